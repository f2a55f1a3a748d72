//! Metadata values as JSON, the way Ollama's `/api/show` returns them in `model_info`.

use serde_json::{Map, Number, Value};

use super::{GgufFile, MetaValue};

impl GgufFile {
    /// One metadata value as JSON. Arrays longer than `max_array` items come back empty
    /// (`[]`), as Ollama's documentation describes for a `show` that is not verbose;
    /// `None` keeps every item. Strings that are not UTF-8 are converted lossily, floats
    /// that are not finite become `null`.
    pub fn value_json(&self, v: &MetaValue, max_array: Option<usize>) -> Value {
        match v {
            MetaValue::String(_) => Value::String(self.string_lossy(v).unwrap_or_default().into()),
            MetaValue::Array(a) => {
                if max_array.is_some_and(|max| a.len > max as u64) {
                    return Value::Array(Vec::new());
                }
                let items = self.array_items(a);
                Value::Array(
                    items
                        .iter()
                        .map(|x| self.value_json(x, max_array))
                        .collect(),
                )
            }
            MetaValue::Bool(b) => Value::Bool(*b),
            // Through the shortest decimal form, so 1e-5 stays 1e-5 (not 9.99999974e-6).
            MetaValue::F32(x) => float(x.to_string().parse().unwrap_or(f64::NAN)),
            MetaValue::F64(x) => float(*x),
            MetaValue::U64(x) => Value::Number((*x).into()),
            v => v
                .as_i128()
                .and_then(|x| i64::try_from(x).ok())
                .map_or(Value::Null, |x| Value::Number(x.into())),
        }
    }

    /// Every metadata key but those in `skip`, as a JSON object in file order.
    pub fn metadata_json(&self, skip: &[&str], max_array: Option<usize>) -> Map<String, Value> {
        self.metadata()
            .filter(|(k, _)| !skip.contains(k))
            .map(|(k, v)| (k.to_string(), self.value_json(v, max_array)))
            .collect()
    }
}

fn float(x: f64) -> Value {
    Number::from_f64(x).map_or(Value::Null, Value::Number)
}

#[cfg(test)]
mod tests {
    use crate::gguf::write::{Value as W, Writer};
    use crate::gguf::GgufFile;
    use serde_json::json;

    #[test]
    fn metadata_as_json() {
        let mut w = Writer::new();
        w.kv("general.name", W::str("x"))
            .kv("a.eps", W::F32(1e-5))
            .kv("a.n", W::U32(7))
            .kv("a.neg", W::I32(-3))
            .kv("a.flag", W::Bool(true))
            .kv("a.small", W::i32s(&[1, 2, 3]))
            .kv("a.big", W::strs(&["a", "b", "c", "d", "e", "f"]));
        let f = GgufFile::from_bytes(w.build().0).unwrap();
        let m = f.metadata_json(&["general.name"], Some(5));
        assert_eq!(
            serde_json::Value::Object(m),
            json!({"a.eps": 1e-5, "a.n": 7, "a.neg": -3, "a.flag": true,
                   "a.small": [1, 2, 3], "a.big": []})
        );
        let m = f.metadata_json(&[], None);
        assert_eq!(m["a.big"], json!(["a", "b", "c", "d", "e", "f"]));
        assert_eq!(m["general.name"], json!("x"));
    }
}
