//! D-Bus marshalling, little-endian, for the few types systemd's Manager takes and returns:
//! basic values, strings, object paths, signatures, arrays, structs and variants. Alignment
//! is counted from the start of the buffer, which is the message's or its body's (a body
//! starts on an 8-byte boundary, so both count alike).

/// A value to marshal, with its signature.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Bool(bool),
    U32(u32),
    U64(u64),
    Str(String),
    Path(String),
    Sig(String),
    Bytes(Vec<u8>),
    /// An array of u32 (`au`).
    U32s(Vec<u32>),
    /// A struct of a string and a variant (`(sv)`), the unit property.
    Prop(String, Box<Value>),
    /// An array of `(sv)`.
    Props(Vec<(String, Value)>),
    /// An array of `(sa(sv))`, StartTransientUnit's auxiliary units.
    Aux(Vec<(String, Vec<(String, Value)>)>),
    Variant(Box<Value>),
}

impl Value {
    pub fn signature(&self) -> String {
        match self {
            Value::Bool(_) => "b".into(),
            Value::U32(_) => "u".into(),
            Value::U64(_) => "t".into(),
            Value::Str(_) => "s".into(),
            Value::Path(_) => "o".into(),
            Value::Sig(_) => "g".into(),
            Value::Bytes(_) => "ay".into(),
            Value::U32s(_) => "au".into(),
            Value::Prop(..) => "(sv)".into(),
            Value::Props(_) => "a(sv)".into(),
            Value::Aux(_) => "a(sa(sv))".into(),
            Value::Variant(_) => "v".into(),
        }
    }
}

#[derive(Default)]
pub struct Writer {
    pub buf: Vec<u8>,
}

impl Writer {
    pub fn align(&mut self, n: usize) {
        while self.buf.len() % n != 0 {
            self.buf.push(0);
        }
    }
    pub fn u8(&mut self, v: u8) {
        self.buf.push(v);
    }
    pub fn u32(&mut self, v: u32) {
        self.align(4);
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    pub fn u64(&mut self, v: u64) {
        self.align(8);
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    pub fn str(&mut self, s: &str) {
        self.u32(s.len() as u32);
        self.buf.extend_from_slice(s.as_bytes());
        self.buf.push(0);
    }
    pub fn sig(&mut self, s: &str) {
        self.u8(s.len() as u8);
        self.buf.extend_from_slice(s.as_bytes());
        self.buf.push(0);
    }
    /// An array whose elements align to `elem_align`: its byte length, then the elements.
    pub fn array(&mut self, elem_align: usize, body: impl FnOnce(&mut Writer)) {
        self.u32(0);
        let at = self.buf.len() - 4;
        self.align(elem_align);
        let start = self.buf.len();
        body(self);
        let len = (self.buf.len() - start) as u32;
        self.buf[at..at + 4].copy_from_slice(&len.to_le_bytes());
    }
    fn props(&mut self, props: &[(String, Value)]) {
        self.array(8, |w| {
            for (name, v) in props {
                w.align(8);
                w.str(name);
                w.variant(v);
            }
        });
    }
    pub fn variant(&mut self, v: &Value) {
        self.sig(&v.signature());
        self.value(v);
    }
    pub fn value(&mut self, v: &Value) {
        match v {
            Value::Bool(b) => self.u32(u32::from(*b)),
            Value::U32(n) => self.u32(*n),
            Value::U64(n) => self.u64(*n),
            Value::Str(s) | Value::Path(s) => self.str(s),
            Value::Sig(s) => self.sig(s),
            Value::Bytes(b) => self.array(1, |w| w.buf.extend_from_slice(b)),
            Value::U32s(v) => self.array(4, |w| v.iter().for_each(|n| w.u32(*n))),
            Value::Prop(name, v) => {
                self.align(8);
                self.str(name);
                self.variant(v);
            }
            Value::Props(p) => self.props(p),
            Value::Aux(units) => self.array(8, |w| {
                for (name, props) in units {
                    w.align(8);
                    w.str(name);
                    w.props(props);
                }
            }),
            Value::Variant(v) => self.variant(v),
        }
    }
}

/// A cursor over a received message; every read checks its bounds.
pub struct Reader<'a> {
    pub buf: &'a [u8],
    pub pos: usize,
}

pub type Short = &'static str;

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Reader<'a> {
        Reader { buf, pos: 0 }
    }
    pub fn align(&mut self, n: usize) -> Result<(), Short> {
        let to = self.pos.div_ceil(n) * n;
        if to > self.buf.len() {
            return Err("a message cut short");
        }
        self.pos = to;
        Ok(())
    }
    fn take(&mut self, n: usize) -> Result<&'a [u8], Short> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.buf.len());
        let end = end.ok_or("a message cut short")?;
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }
    pub fn u8(&mut self) -> Result<u8, Short> {
        Ok(self.take(1)?[0])
    }
    pub fn u32(&mut self) -> Result<u32, Short> {
        self.align(4)?;
        Ok(u32::from_le_bytes(self.take(4)?.try_into().unwrap()))
    }
    pub fn u64(&mut self) -> Result<u64, Short> {
        self.align(8)?;
        Ok(u64::from_le_bytes(self.take(8)?.try_into().unwrap()))
    }
    fn text(&mut self, len: usize) -> Result<String, Short> {
        let s = self.take(len)?.to_vec();
        if self.take(1)? != [0] {
            return Err("a string without its NUL");
        }
        String::from_utf8(s).map_err(|_| "a string that is not UTF-8")
    }
    pub fn str(&mut self) -> Result<String, Short> {
        let len = self.u32()? as usize;
        self.text(len)
    }
    pub fn sig(&mut self) -> Result<String, Short> {
        let len = self.u8()? as usize;
        self.text(len)
    }
    /// A value of the single complete type `sig`, as text when it is a string kind, skipped
    /// (None) otherwise: what header fields and variants need.
    pub fn basic(&mut self, sig: &str) -> Result<Option<String>, Short> {
        match sig {
            "s" | "o" => self.str().map(Some),
            "g" => self.sig().map(Some),
            "u" | "i" | "b" => self.u32().map(|n| Some(n.to_string())),
            "t" | "x" => self.u64().map(|n| Some(n.to_string())),
            "y" => self.u8().map(|n| Some(n.to_string())),
            _ => Err("a value of a type nsboot does not read"),
        }
    }
}

/// Escapes a unit name for its object path, as systemd does (bus_label_escape).
pub fn object_label(name: &str) -> String {
    let mut out = String::new();
    for (i, b) in name.bytes().enumerate() {
        if b.is_ascii_alphabetic() || (i > 0 && b.is_ascii_digit()) {
            out.push(b as char);
        } else {
            out.push_str(&format!("_{b:02x}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn properties_are_marshalled_as_dbus_has_them() {
        let mut w = Writer::default();
        w.value(&Value::Props(vec![("Delegate".into(), Value::Bool(true))]));
        let want: &[u8] = &[
            20, 0, 0, 0, // array length: the element's bytes, from the aligned start
            0, 0, 0, 0, // padding to the struct's 8
            8, 0, 0, 0, b'D', b'e', b'l', b'e', b'g', b'a', b't', b'e', 0, // "Delegate"
            1, b'b', 0, // variant signature
            1, 0, 0, 0, // true
        ];
        assert_eq!(w.buf, want);
        let mut r = Reader::new(&w.buf);
        assert_eq!(r.u32(), Ok(20));
        r.align(8).unwrap();
        assert_eq!(r.str().as_deref(), Ok("Delegate"));
        assert_eq!(r.sig().as_deref(), Ok("b"));
        assert_eq!(r.basic("b"), Ok(Some("1".into())));
        assert!(r.u32().is_err(), "read past the end");
    }

    #[test]
    fn unit_names_escape_into_object_paths() {
        assert_eq!(object_label("nsboot-a1.scope"), "nsboot_2da1_2escope");
        assert_eq!(object_label("1x"), "_31x");
    }
}
