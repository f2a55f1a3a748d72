fn main() {
    println!("hearth");
}
