//! JSON read strictly: an object that repeats a key is an error.
//!
//! serde_json keeps the last of two equal keys, so `{"roomId": "a", "roomId": "b"}` means
//! whatever comes last to Hearth, while a proxy, a logger or a client library in front of it
//! may read the first: two readers of one text disagreeing about what it says is how request
//! smuggling starts. RFC 8259 leaves repeated names to the implementation; Hearth refuses them,
//! at every depth, in socket frames and HTTP bodies alike.

use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::map::Entry;
use serde_json::{Map, Value};
use std::fmt;

/// Reads any JSON value into a [`Value`], refusing repeated keys.
pub(crate) struct StrictValue;

impl<'de> DeserializeSeed<'de> for StrictValue {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for StrictValue {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        StrictValue.deserialize(deserializer)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(StrictValue)? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut object = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let value = map.next_value_seed(StrictValue)?;
            // One lookup per key, as `Value`'s own reader makes.
            match object.entry(key) {
                Entry::Vacant(slot) => {
                    slot.insert(value);
                }
                Entry::Occupied(taken) => {
                    let shown: String = taken.key().chars().take(64).collect();
                    return Err(de::Error::custom(format_args!("duplicate key {shown:?}")));
                }
            }
        }
        Ok(Value::Object(object))
    }
}

/// A JSON object read strictly (the body of every HTTP request Hearth takes).
pub struct StrictObject(pub Map<String, Value>);

impl<'de> Deserialize<'de> for StrictObject {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<StrictObject, D::Error> {
        match StrictValue.deserialize(deserializer)? {
            Value::Object(object) => Ok(StrictObject(object)),
            other => Err(de::Error::invalid_type(
                unexpected(&other),
                &"a JSON object",
            )),
        }
    }
}

fn unexpected(value: &Value) -> de::Unexpected<'_> {
    match value {
        Value::Null => de::Unexpected::Unit,
        Value::Bool(b) => de::Unexpected::Bool(*b),
        Value::Number(_) => de::Unexpected::Other("number"),
        Value::String(s) => de::Unexpected::Str(s),
        Value::Array(_) => de::Unexpected::Seq,
        Value::Object(_) => de::Unexpected::Map,
    }
}

/// Parses a whole text as one strict JSON value (trailing non-whitespace is an error, as in
/// `serde_json::from_str`).
pub(crate) fn from_str(text: &str) -> Result<Value, serde_json::Error> {
    let mut deserializer = serde_json::Deserializer::from_str(text);
    let value = StrictValue.deserialize(&mut deserializer)?;
    deserializer.end()?;
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_keys_are_refused_at_any_depth() {
        assert!(from_str(r#"{"a": 1, "a": 2}"#).is_err());
        assert!(from_str(r#"{"a": [{"b": 1, "c": 2, "b": 3}]}"#).is_err());
        let error = serde_json::from_str::<StrictObject>(r#"{"x": {}, "x": 1}"#)
            .err()
            .unwrap();
        assert!(error.to_string().contains("duplicate key \"x\""), "{error}");
    }

    #[test]
    fn everything_else_reads_as_serde_json_reads_it() {
        for text in [
            r#"{"a": 1, "b": [true, null, -2, 1.5e3, "é\u0000"], "c": {"a": {}}}"#,
            "18446744073709551615",
            "-9223372036854775808",
            r#""\ud83d\ude00""#,
            "[]",
        ] {
            let strict = from_str(text).unwrap();
            let lenient: Value = serde_json::from_str(text).unwrap();
            assert_eq!(strict, lenient, "{text}");
        }
        assert!(from_str("{} x").is_err());
        assert!(
            from_str(&"[".repeat(200)).is_err(),
            "the depth limit still holds"
        );
        assert!(serde_json::from_str::<StrictObject>("[1]").is_err());
    }
}
