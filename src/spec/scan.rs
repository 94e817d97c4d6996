//! The contract check on config.json as written, before decoding (which drops what oci-spec
//! does not model, mounts' uidMappings for one): every field is looked up in `fields`, a
//! refused one set to a value is refused, cgroup settings are noted, and no string anywhere
//! may hold a NUL byte (the kernel would read only up to it).
//!
//! One pass over the bytes with serde's visitors; nothing is allocated unless something is
//! found (or a key is written with escapes).

use std::cell::RefCell;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use super::fields::{Field, Rule, Shape};

/// What the scan found that is not a refusal.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Found {
    /// The cgroup settings given (JSON paths), in document order.
    pub cgroup: Vec<String>,
}

/// A refusal: the JSON path and the message.
#[derive(Debug, PartialEq, Eq)]
pub struct Refusal {
    pub json_path: String,
    pub msg: String,
}

struct Ctx {
    refusal: RefCell<Option<Refusal>>,
    cgroup: RefCell<Vec<String>>,
}

/// Scans `bytes` against `shape` (named `prefix` in paths). A document that does not parse
/// is not this check's business: decoding reports it, with its line and column.
pub fn scan(bytes: &[u8], shape: &'static Shape, prefix: &str) -> Result<Found, Refusal> {
    walk(
        &mut serde_json::Deserializer::from_slice(bytes),
        shape,
        prefix,
    )
}

/// `scan` on a value already parsed (`exec --process`).
pub fn scan_value(
    v: &serde_json::Value,
    shape: &'static Shape,
    prefix: &str,
) -> Result<Found, Refusal> {
    walk(v, shape, prefix)
}

fn walk<'de, D: Deserializer<'de>>(
    d: D,
    shape: &'static Shape,
    prefix: &str,
) -> Result<Found, Refusal> {
    let ctx = Ctx {
        refusal: RefCell::new(None),
        cgroup: RefCell::new(Vec::new()),
    };
    let path = Path::Root(prefix);
    let _ = Walk {
        shape,
        ctx: &ctx,
        path: &path,
    }
    .deserialize(d);
    finish(ctx)
}

fn finish(ctx: Ctx) -> Result<Found, Refusal> {
    if let Some(r) = ctx.refusal.into_inner() {
        return Err(r);
    }
    Ok(Found {
        cgroup: ctx.cgroup.into_inner(),
    })
}

/// The path of the value being walked, as a chain of borrowed links up to the root: built
/// into a string only for what is reported.
enum Path<'a> {
    Root(&'a str),
    Field(&'a Path<'a>, &'static str),
    Index(&'a Path<'a>, usize),
    Key(&'a Path<'a>, &'a str),
}

impl Path<'_> {
    fn render(&self) -> String {
        let mut s = match self {
            Path::Root(p) => return p.to_string(),
            Path::Field(up, _) | Path::Index(up, _) | Path::Key(up, _) => up.render(),
        };
        match self {
            Path::Index(_, i) => s.push_str(&format!("[{i}]")),
            Path::Field(_, name) => push_name(&mut s, name),
            Path::Key(_, key) => push_name(&mut s, key),
            Path::Root(_) => {}
        }
        s
    }
}

fn push_name(s: &mut String, name: &str) {
    if !s.is_empty() {
        s.push('.');
    }
    s.push_str(name);
}

impl Ctx {
    fn refuse<E: de::Error>(&self, path: &Path, msg: impl Into<String>) -> E {
        let mut r = self.refusal.borrow_mut();
        if r.is_none() {
            *r = Some(Refusal {
                json_path: path.render(),
                msg: msg.into(),
            });
        }
        E::custom("refused")
    }
}

const NUL: &str = "contains a NUL byte, where the kernel would end the string: remove it";

struct Walk<'a> {
    shape: &'static Shape,
    ctx: &'a Ctx,
    path: &'a Path<'a>,
}

impl<'de> DeserializeSeed<'de> for Walk<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Walk<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_none<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E: de::Error>(self, s: &str) -> Result<(), E> {
        if s.contains('\0') {
            return Err(self.ctx.refuse(self.path, NUL));
        }
        Ok(())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let elem = match self.shape {
            Shape::Array(e) => e,
            _ => &Shape::Leaf,
        };
        let mut i = 0;
        loop {
            let path = Path::Index(self.path, i);
            let seed = Walk {
                shape: elem,
                ctx: self.ctx,
                path: &path,
            };
            if seq.next_element_seed(seed)?.is_none() {
                return Ok(());
            }
            i += 1;
        }
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key_seed(KeySeed)? {
            let name: &str = &key;
            if name.contains('\0') {
                return Err(self.ctx.refuse(self.path, format!("a key {NUL}")));
            }
            let field = match self.shape {
                Shape::Object(fields) => fields.iter().find(|f| f.name == name),
                _ => None,
            };
            match field {
                Some(field) => {
                    let path = Path::Field(self.path, field.name);
                    map.next_value_seed(FieldSeed {
                        field,
                        ctx: self.ctx,
                        path: &path,
                    })?;
                }
                None => {
                    let value_shape = match self.shape {
                        Shape::Map(v) => v,
                        _ => &Shape::Leaf,
                    };
                    let path = Path::Key(self.path, name);
                    map.next_value_seed(Walk {
                        shape: value_shape,
                        ctx: self.ctx,
                        path: &path,
                    })?;
                }
            }
        }
        Ok(())
    }
}

struct FieldSeed<'a> {
    field: &'static Field,
    ctx: &'a Ctx,
    path: &'a Path<'a>,
}

impl<'de> DeserializeSeed<'de> for FieldSeed<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        match self.field.rule {
            Rule::Refused(fix) | Rule::RefusedBut(_, fix) => {
                let allowed = match self.field.rule {
                    Rule::RefusedBut(value, _) => value,
                    _ => "",
                };
                let msg = match d.deserialize_any(Probe { zero: false })? {
                    Value::Empty => return Ok(()),
                    Value::Text(s) if s == allowed => return Ok(()),
                    Value::Text(s) => format!("{s:?} set, but {fix}"),
                    Value::Other => format!("set, but {fix}"),
                };
                Err(self.ctx.refuse(self.path, msg))
            }
            Rule::Cgroup => {
                // A map's keys are settings of their own ({"memory.max": ""} is one).
                let zero = !matches!(self.field.shape, Shape::Map(_));
                if !matches!(d.deserialize_any(Probe { zero })?, Value::Empty) {
                    self.ctx.cgroup.borrow_mut().push(self.path.render());
                }
                Ok(())
            }
            Rule::Applied(_) | Rule::Checked(_) => d.deserialize_any(Walk {
                shape: &self.field.shape,
                ctx: self.ctx,
                path: self.path,
            }),
        }
    }
}

/// A field's value as far as the contract cares: empty (null, "", [] or {}, which engines
/// write for what they do not set, so it stands for absent), a string (quoted in a refusal),
/// or anything else. With `zero` (cgroup settings), 0, false and objects of empty values are
/// empty too: runc leaves a cgroup file alone for 0 (`pids.limit: 0`).
#[derive(Clone, Copy)]
struct Probe {
    zero: bool,
}

enum Value {
    Empty,
    Text(String),
    Other,
}

impl Probe {
    fn scalar(self, empty: bool) -> Value {
        if self.zero && empty {
            Value::Empty
        } else {
            Value::Other
        }
    }
    fn all(self, empty: bool) -> Value {
        if empty {
            Value::Empty
        } else {
            Value::Other
        }
    }
}

impl<'de> DeserializeSeed<'de> for Probe {
    type Value = Value;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Probe {
    type Value = Value;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E: de::Error>(self, b: bool) -> Result<Value, E> {
        Ok(self.scalar(!b))
    }
    fn visit_i64<E: de::Error>(self, n: i64) -> Result<Value, E> {
        Ok(self.scalar(n == 0))
    }
    fn visit_u64<E: de::Error>(self, n: u64) -> Result<Value, E> {
        Ok(self.scalar(n == 0))
    }
    fn visit_f64<E: de::Error>(self, n: f64) -> Result<Value, E> {
        Ok(self.scalar(n == 0.0))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Empty)
    }
    fn visit_none<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Empty)
    }
    fn visit_str<E: de::Error>(self, s: &str) -> Result<Value, E> {
        Ok(if s.is_empty() {
            Value::Empty
        } else {
            Value::Text(s.to_string())
        })
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut empty = true;
        while let Some(v) = seq.next_element_seed(self)? {
            empty &= self.zero && matches!(v, Value::Empty);
        }
        Ok(self.all(empty))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut empty = true;
        while map.next_key::<IgnoredAny>()?.is_some() {
            let v = map.next_value_seed(self)?;
            empty &= self.zero && matches!(v, Value::Empty);
        }
        Ok(self.all(empty))
    }
}

/// A map key, borrowed from the input when it has no escapes.
struct KeySeed;

enum Key<'de> {
    Borrowed(&'de str),
    Owned(String),
}

impl std::ops::Deref for Key<'_> {
    type Target = str;
    fn deref(&self) -> &str {
        match self {
            Key::Borrowed(s) => s,
            Key::Owned(s) => s,
        }
    }
}

impl<'de> DeserializeSeed<'de> for KeySeed {
    type Value = Key<'de>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Key<'de>, D::Error> {
        d.deserialize_str(KeyVisitor)
    }
}

struct KeyVisitor;

impl<'de> Visitor<'de> for KeyVisitor {
    type Value = Key<'de>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a string key")
    }
    fn visit_borrowed_str<E: de::Error>(self, s: &'de str) -> Result<Key<'de>, E> {
        Ok(Key::Borrowed(s))
    }
    fn visit_str<E: de::Error>(self, s: &str) -> Result<Key<'de>, E> {
        Ok(Key::Owned(s.to_string()))
    }
}
