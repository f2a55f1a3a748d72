use hearth::engine::{Engine, EngineOptions};
use hearth::model::Model;
#[test]
fn scratch() {
    let m = Model::open(std::path::Path::new("/root/.cache/hearth/test-models/nomic-embed-text-v1.5.f16.gguf")).unwrap();
    let mut e = Engine::new(m, EngineOptions::default());
    let short: Vec<Vec<u32>> = (0..64).map(|i| { let mut v = vec![101u32]; v.extend((0..10).map(|j| 2000 + (i*13+j*7) as u32 % 20000)); v.push(102); v }).collect();
    let long: Vec<Vec<u32>> = (0..8).map(|i| { let mut v = vec![101u32]; v.extend((0..510).map(|j| 2000 + (i*13+j*7) as u32 % 20000)); v.push(102); v }).collect();
    let mut out = Vec::new();
    for _ in 0..2 {
        let r: Vec<&[u32]> = short.iter().map(|v| v.as_slice()).collect();
        let t = std::time::Instant::now();
        e.embed(&r, &mut out).unwrap();
        eprintln!("64 short (12 tok): {:?} -> {:.1}/s", t.elapsed(), 64.0 / t.elapsed().as_secs_f64());
        let t = std::time::Instant::now();
        for c in long.chunks(4) {
        let r: Vec<&[u32]> = c.iter().map(|v| v.as_slice()).collect();
        e.embed(&r, &mut out).unwrap();
        }
        eprintln!("8 x 512: {:?} -> {:.2}/s", t.elapsed(), 8.0 / t.elapsed().as_secs_f64());
    }
}
