//! A serde `Serializer` that writes pickle protocol 4, as Python's `pickle.dumps` would for the
//! same Python values: registered structs become instances of their Python class
//! (`cls.__new__(cls)` then `__dict__.update(state)`, the `NEWOBJ` + `BUILD` pair Python
//! itself writes for plain classes), marked fields become `datetime.datetime`s.

use std::collections::HashMap;
use std::fmt;

use serde::ser::{self, Serialize};

use super::ClassPath;
use super::datetime;
use super::error::{FieldPath, PathSegment, PickleError};

mod op {
    pub const PROTO: u8 = 0x80;
    pub const STOP: u8 = b'.';
    pub const MARK: u8 = b'(';
    pub const NONE: u8 = b'N';
    pub const NEWTRUE: u8 = 0x88;
    pub const NEWFALSE: u8 = 0x89;
    pub const BININT1: u8 = b'K';
    pub const BININT2: u8 = b'M';
    pub const BININT: u8 = b'J';
    pub const LONG1: u8 = 0x8a;
    pub const BINFLOAT: u8 = b'G';
    pub const SHORT_BINUNICODE: u8 = 0x8c;
    pub const BINUNICODE: u8 = b'X';
    pub const BINUNICODE8: u8 = 0x8d;
    pub const SHORT_BINBYTES: u8 = b'C';
    pub const BINBYTES: u8 = b'B';
    pub const BINBYTES8: u8 = 0x8e;
    pub const EMPTY_LIST: u8 = b']';
    pub const APPENDS: u8 = b'e';
    pub const EMPTY_DICT: u8 = b'}';
    pub const SETITEM: u8 = b's';
    pub const SETITEMS: u8 = b'u';
    pub const TUPLE: u8 = b't';
    pub const TUPLE1: u8 = 0x85;
    pub const TUPLE2: u8 = 0x86;
    pub const TUPLE3: u8 = 0x87;
    pub const EMPTY_TUPLE: u8 = b')';
    pub const STACK_GLOBAL: u8 = 0x93;
    pub const REDUCE: u8 = b'R';
    pub const NEWOBJ: u8 = 0x81;
    pub const BUILD: u8 = b'b';
}

/// The serde error of the writer; its typed twin is kept in [`Writer::error`].
#[derive(Debug)]
pub(crate) struct SerError(String);

impl fmt::Display for SerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for SerError {}

impl ser::Error for SerError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        SerError(msg.to_string())
    }
}

/// Writes one pickle.
pub(crate) struct Writer<'c> {
    out: Vec<u8>,
    classes: &'c HashMap<&'static str, ClassPath>,
    path: FieldPath,
    at_top: bool,
    error: Option<PickleError>,
}

/// Pickles `value` with the Python classes in `classes`.
pub(crate) fn write<T: Serialize + ?Sized>(
    value: &T,
    classes: &HashMap<&'static str, ClassPath>,
) -> Result<Vec<u8>, PickleError> {
    let mut writer = Writer {
        out: vec![op::PROTO, 4],
        classes,
        path: FieldPath::root(),
        at_top: true,
        error: None,
    };
    match value.serialize(&mut writer) {
        Ok(()) => {
            writer.out.push(op::STOP);
            Ok(writer.out)
        }
        Err(error) => Err(writer.error.take().unwrap_or(PickleError::Write {
            path: writer.path,
            message: error.0,
        })),
    }
}

impl Writer<'_> {
    fn fail(&mut self, message: impl Into<String>) -> SerError {
        let message = message.into();
        if self.error.is_none() {
            self.error = Some(PickleError::Write {
                path: self.path.clone(),
                message: message.clone(),
            });
        }
        SerError(message)
    }

    fn op(&mut self, code: u8) {
        self.out.push(code);
    }

    fn sized(&mut self, short: u8, long: u8, huge: u8, data: &[u8]) {
        if let Ok(n) = u8::try_from(data.len()) {
            self.out.push(short);
            self.out.push(n);
        } else if let Ok(n) = u32::try_from(data.len()) {
            self.out.push(long);
            self.out.extend_from_slice(&n.to_le_bytes());
        } else {
            self.out.push(huge);
            self.out
                .extend_from_slice(&(data.len() as u64).to_le_bytes());
        }
        self.out.extend_from_slice(data);
    }

    fn str(&mut self, s: &str) {
        self.sized(
            op::SHORT_BINUNICODE,
            op::BINUNICODE,
            op::BINUNICODE8,
            s.as_bytes(),
        );
    }

    fn int(&mut self, v: i128) {
        if let Ok(v) = u8::try_from(v) {
            self.out.extend_from_slice(&[op::BININT1, v]);
        } else if let Ok(v) = u16::try_from(v) {
            self.op(op::BININT2);
            self.out.extend_from_slice(&v.to_le_bytes());
        } else if let Ok(v) = i32::try_from(v) {
            self.op(op::BININT);
            self.out.extend_from_slice(&v.to_le_bytes());
        } else {
            // The shortest two's complement that keeps the sign.
            let bytes = v.to_le_bytes();
            let mut n = 16;
            while n > 1 {
                let (last, prev) = (bytes[n - 1], bytes[n - 2]);
                let redundant =
                    (last == 0 && prev & 0x80 == 0) || (last == 0xff && prev & 0x80 != 0);
                if !redundant {
                    break;
                }
                n -= 1;
            }
            self.out.extend_from_slice(&[op::LONG1, n as u8]);
            self.out.extend_from_slice(&bytes[..n]);
        }
    }

    fn global(&mut self, module: &str, name: &str) {
        self.str(module);
        self.str(name);
        self.op(op::STACK_GLOBAL);
    }

    /// `datetime.datetime` from an ISO 8601 string.
    fn datetime(&mut self, text: &str) -> Result<(), SerError> {
        let parsed = datetime::parse(text).map_err(|message| self.fail(message))?;
        self.global("datetime", "datetime");
        self.sized(
            op::SHORT_BINBYTES,
            op::BINBYTES,
            op::BINBYTES8,
            &parsed.state,
        );
        match parsed.offset {
            Some(offset) => {
                // datetime.timezone(datetime.timedelta(0, offset, 0)); an offset of zero
                // gives the `datetime.timezone.utc` singleton.
                self.global("datetime", "timezone");
                self.global("datetime", "timedelta");
                self.int(0);
                self.int(offset.into());
                self.int(0);
                self.op(op::TUPLE3);
                self.op(op::REDUCE);
                self.op(op::TUPLE1);
                self.op(op::REDUCE);
                self.op(op::TUPLE2);
            }
            None => self.op(op::TUPLE1),
        }
        self.op(op::REDUCE);
        Ok(())
    }
}

/// An open list, tuple, dict or object: what to write when it closes.
pub(crate) struct Compound<'a, 'c> {
    writer: &'a mut Writer<'c>,
    end: &'static [u8],
    index: usize,
}

impl Compound<'_, '_> {
    fn element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), SerError> {
        self.writer.path.push(PathSegment::Index(self.index));
        value.serialize(&mut *self.writer)?;
        self.writer.path.pop();
        self.index += 1;
        Ok(())
    }

    fn field<T: Serialize + ?Sized>(&mut self, key: &str, value: &T) -> Result<(), SerError> {
        self.writer.str(key);
        self.writer.path.push(PathSegment::Field(key.to_owned()));
        value.serialize(&mut *self.writer)?;
        self.writer.path.pop();
        Ok(())
    }

    fn close(self) -> Result<(), SerError> {
        self.writer.out.extend_from_slice(self.end);
        Ok(())
    }
}

impl<'a, 'c> ser::Serializer for &'a mut Writer<'c> {
    type Ok = ();
    type Error = SerError;
    type SerializeSeq = Compound<'a, 'c>;
    type SerializeTuple = Compound<'a, 'c>;
    type SerializeTupleStruct = Compound<'a, 'c>;
    type SerializeTupleVariant = Compound<'a, 'c>;
    type SerializeMap = Compound<'a, 'c>;
    type SerializeStruct = Compound<'a, 'c>;
    type SerializeStructVariant = Compound<'a, 'c>;

    fn serialize_bool(self, v: bool) -> Result<(), SerError> {
        self.op(if v { op::NEWTRUE } else { op::NEWFALSE });
        Ok(())
    }
    fn serialize_i8(self, v: i8) -> Result<(), SerError> {
        self.int(v.into());
        Ok(())
    }
    fn serialize_i16(self, v: i16) -> Result<(), SerError> {
        self.int(v.into());
        Ok(())
    }
    fn serialize_i32(self, v: i32) -> Result<(), SerError> {
        self.int(v.into());
        Ok(())
    }
    fn serialize_i64(self, v: i64) -> Result<(), SerError> {
        self.int(v.into());
        Ok(())
    }
    fn serialize_i128(self, v: i128) -> Result<(), SerError> {
        self.int(v);
        Ok(())
    }
    fn serialize_u8(self, v: u8) -> Result<(), SerError> {
        self.int(v.into());
        Ok(())
    }
    fn serialize_u16(self, v: u16) -> Result<(), SerError> {
        self.int(v.into());
        Ok(())
    }
    fn serialize_u32(self, v: u32) -> Result<(), SerError> {
        self.int(v.into());
        Ok(())
    }
    fn serialize_u64(self, v: u64) -> Result<(), SerError> {
        self.int(v.into());
        Ok(())
    }
    fn serialize_u128(self, v: u128) -> Result<(), SerError> {
        match i128::try_from(v) {
            Ok(v) => {
                self.int(v);
                Ok(())
            }
            Err(_) => Err(self.fail("integers above i128::MAX are not supported")),
        }
    }
    fn serialize_f32(self, v: f32) -> Result<(), SerError> {
        self.serialize_f64(v.into())
    }
    fn serialize_f64(self, v: f64) -> Result<(), SerError> {
        self.op(op::BINFLOAT);
        self.out.extend_from_slice(&v.to_be_bytes());
        Ok(())
    }
    fn serialize_char(self, v: char) -> Result<(), SerError> {
        self.str(v.encode_utf8(&mut [0; 4]));
        Ok(())
    }
    fn serialize_str(self, v: &str) -> Result<(), SerError> {
        self.str(v);
        Ok(())
    }
    fn serialize_bytes(self, v: &[u8]) -> Result<(), SerError> {
        self.sized(op::SHORT_BINBYTES, op::BINBYTES, op::BINBYTES8, v);
        Ok(())
    }
    fn serialize_none(self) -> Result<(), SerError> {
        self.op(op::NONE);
        Ok(())
    }
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<(), SerError> {
        value.serialize(self)
    }
    fn serialize_unit(self) -> Result<(), SerError> {
        self.op(op::NONE);
        Ok(())
    }
    fn serialize_unit_struct(self, _name: &'static str) -> Result<(), SerError> {
        self.op(op::NONE);
        Ok(())
    }
    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
    ) -> Result<(), SerError> {
        self.str(variant);
        Ok(())
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        name: &'static str,
        value: &T,
    ) -> Result<(), SerError> {
        if name != datetime::MARKER {
            return value.serialize(self);
        }
        match serde_json::to_value(value) {
            Ok(serde_json::Value::String(text)) => self.datetime(&text),
            Ok(serde_json::Value::Null) => self.serialize_none(),
            Ok(other) => Err(self.fail(format!(
                "a field marked as a datetime must serialize as an ISO 8601 string, not {other}"
            ))),
            Err(error) => Err(self.fail(error.to_string())),
        }
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<(), SerError> {
        self.at_top = false;
        self.op(op::EMPTY_DICT);
        self.str(variant);
        value.serialize(&mut *self)?;
        self.op(op::SETITEM);
        Ok(())
    }
    fn serialize_seq(self, _len: Option<usize>) -> Result<Compound<'a, 'c>, SerError> {
        self.at_top = false;
        self.op(op::EMPTY_LIST);
        self.op(op::MARK);
        Ok(Compound {
            writer: self,
            end: &[op::APPENDS],
            index: 0,
        })
    }
    fn serialize_tuple(self, _len: usize) -> Result<Compound<'a, 'c>, SerError> {
        self.at_top = false;
        self.op(op::MARK);
        Ok(Compound {
            writer: self,
            end: &[op::TUPLE],
            index: 0,
        })
    }
    fn serialize_tuple_struct(
        self,
        _name: &'static str,
        len: usize,
    ) -> Result<Compound<'a, 'c>, SerError> {
        self.serialize_tuple(len)
    }
    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        _len: usize,
    ) -> Result<Compound<'a, 'c>, SerError> {
        self.at_top = false;
        self.op(op::EMPTY_DICT);
        self.str(variant);
        self.op(op::MARK);
        Ok(Compound {
            writer: self,
            end: &[op::TUPLE, op::SETITEM],
            index: 0,
        })
    }
    fn serialize_map(self, _len: Option<usize>) -> Result<Compound<'a, 'c>, SerError> {
        self.at_top = false;
        self.op(op::EMPTY_DICT);
        self.op(op::MARK);
        Ok(Compound {
            writer: self,
            end: &[op::SETITEMS],
            index: 0,
        })
    }
    fn serialize_struct(
        self,
        name: &'static str,
        _len: usize,
    ) -> Result<Compound<'a, 'c>, SerError> {
        let top = std::mem::replace(&mut self.at_top, false);
        let Some(class) = self.classes.get(name) else {
            if top {
                return Err(self.fail(format!(
                    "the struct `{name}` has no Python class: register it with \
                     `PickleSerializer::builder().class::<{name}>()`"
                )));
            }
            // Nested structs without a class are plain dicts.
            return self.serialize_map(None);
        };
        let (module, qualname) = (class.module.clone(), class.qualname.clone());
        self.global(&module, &qualname);
        self.op(op::EMPTY_TUPLE);
        self.op(op::NEWOBJ);
        self.op(op::EMPTY_DICT);
        self.op(op::MARK);
        Ok(Compound {
            writer: self,
            end: &[op::SETITEMS, op::BUILD],
            index: 0,
        })
    }
    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        _len: usize,
    ) -> Result<Compound<'a, 'c>, SerError> {
        self.at_top = false;
        self.op(op::EMPTY_DICT);
        self.str(variant);
        self.op(op::EMPTY_DICT);
        self.op(op::MARK);
        Ok(Compound {
            writer: self,
            end: &[op::SETITEMS, op::SETITEM],
            index: 0,
        })
    }
}

impl ser::SerializeSeq for Compound<'_, '_> {
    type Ok = ();
    type Error = SerError;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), SerError> {
        self.element(value)
    }
    fn end(self) -> Result<(), SerError> {
        self.close()
    }
}

impl ser::SerializeTuple for Compound<'_, '_> {
    type Ok = ();
    type Error = SerError;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), SerError> {
        self.element(value)
    }
    fn end(self) -> Result<(), SerError> {
        self.close()
    }
}

impl ser::SerializeTupleStruct for Compound<'_, '_> {
    type Ok = ();
    type Error = SerError;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), SerError> {
        self.element(value)
    }
    fn end(self) -> Result<(), SerError> {
        self.close()
    }
}

impl ser::SerializeTupleVariant for Compound<'_, '_> {
    type Ok = ();
    type Error = SerError;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), SerError> {
        self.element(value)
    }
    fn end(self) -> Result<(), SerError> {
        self.close()
    }
}

impl ser::SerializeMap for Compound<'_, '_> {
    type Ok = ();
    type Error = SerError;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), SerError> {
        key.serialize(&mut *self.writer)
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), SerError> {
        value.serialize(&mut *self.writer)
    }
    fn end(self) -> Result<(), SerError> {
        self.close()
    }
}

impl ser::SerializeStruct for Compound<'_, '_> {
    type Ok = ();
    type Error = SerError;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), SerError> {
        self.field(key, value)
    }
    fn end(self) -> Result<(), SerError> {
        self.close()
    }
}

impl ser::SerializeStructVariant for Compound<'_, '_> {
    type Ok = ();
    type Error = SerError;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), SerError> {
        self.field(key, value)
    }
    fn end(self) -> Result<(), SerError> {
        self.close()
    }
}
