use super::{DeserializeFn, Serializer};
use crate::error::BoxError;

/// JSON through `serde_json`, identifier 1 as in Python Melange.
#[derive(Debug, Clone, Copy, Default)]
pub struct JsonSerializer;

impl JsonSerializer {
    /// The identifier Python Melange gives its JSON serializer.
    pub const IDENTIFIER: u32 = 1;
}

impl Serializer for JsonSerializer {
    fn identifier(&self) -> u32 {
        Self::IDENTIFIER
    }

    fn serialize(&self, value: &dyn erased_serde::Serialize) -> Result<String, BoxError> {
        Ok(serde_json::to_string(value)?)
    }

    fn deserialize(&self, content: &str, visit: DeserializeFn<'_>) -> Result<(), BoxError> {
        let mut de = serde_json::Deserializer::from_str(content);
        visit(&mut <dyn erased_serde::Deserializer>::erase(&mut de))?;
        de.end()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::serializer::deserialize_with;

    #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
    struct Order {
        id: u64,
        note: String,
    }

    #[test]
    fn round_trips_through_the_trait_object() {
        let serializer: &dyn Serializer = &JsonSerializer;
        let order = Order {
            id: 7,
            note: "héllo \"q\"".into(),
        };
        let text = serializer.serialize(&order).unwrap();
        assert_eq!(text, r#"{"id":7,"note":"héllo \"q\""}"#);
        assert_eq!(deserialize_with::<Order>(serializer, &text).unwrap(), order);
    }

    #[test]
    fn rejects_wrong_shape_and_trailing_input() {
        let err = deserialize_with::<Order>(&JsonSerializer, r#"{"id":"x"}"#).unwrap_err();
        assert!(err.to_string().contains("invalid type"), "{err}");
        let err =
            deserialize_with::<Order>(&JsonSerializer, r#"{"id":1,"note":""} x"#).unwrap_err();
        assert!(err.to_string().contains("trailing"), "{err}");
    }
}
