//! A minimal synchronous D-Bus client: one Unix socket to the system bus (root) or the
//! user's bus (rootless), SASL EXTERNAL with our uid, Hello, method calls that wait for their
//! reply, and signals kept while waiting so that one arriving before its method's reply is
//! not lost. No async runtime and no libdbus: the binary is static, and a launch makes a few
//! calls in a row.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::wire::{Reader, Value, Writer};

#[derive(Debug, Clone, thiserror::Error, Serialize, Deserialize)]
pub enum BusError {
    #[error("connecting to the D-Bus socket {path}: {why}{hint}")]
    Connect {
        path: PathBuf,
        why: String,
        hint: String,
    },
    #[error("D-Bus {bus}: {why}")]
    Protocol { bus: PathBuf, why: String },
    #[error("{method}: {name}: {message}")]
    Remote {
        method: String,
        name: String,
        message: String,
    },
}

const METHOD_CALL: u8 = 1;
const METHOD_RETURN: u8 = 2;
const ERROR: u8 = 3;
pub const SIGNAL: u8 = 4;

/// A received message: its header fields that matter here, and its body.
#[derive(Debug, Default)]
pub struct Message {
    pub typ: u8,
    pub reply_serial: Option<u32>,
    pub error: Option<String>,
    pub path: Option<String>,
    pub interface: Option<String>,
    pub member: Option<String>,
    pub signature: String,
    pub body: Vec<u8>,
}

pub struct Bus {
    sock: UnixStream,
    path: PathBuf,
    serial: u32,
    /// Signals received while waiting for a reply.
    signals: Vec<Message>,
}

/// The user's bus: $DBUS_SESSION_BUS_ADDRESS's `unix:path=`, or $XDG_RUNTIME_DIR/bus.
pub fn user_bus_path() -> Option<PathBuf> {
    let addr = std::env::var("DBUS_SESSION_BUS_ADDRESS").unwrap_or_default();
    for part in addr.split(';') {
        let Some(rest) = part.strip_prefix("unix:") else {
            continue;
        };
        if let Some(p) = rest.split(',').find_map(|kv| kv.strip_prefix("path=")) {
            return Some(PathBuf::from(p));
        }
    }
    let dir = std::env::var_os("XDG_RUNTIME_DIR")?;
    Some(Path::new(&dir).join("bus"))
}

pub const SYSTEM_BUS: &str = "/run/dbus/system_bus_socket";

impl Bus {
    /// Connects and authenticates to the bus at `path`, and says Hello.
    pub fn connect(path: &Path) -> Result<Bus, BusError> {
        let sock = UnixStream::connect(path).map_err(|e| BusError::Connect {
            path: path.into(),
            why: e.to_string(),
            hint: if nix::unistd::geteuid().is_root() {
                String::new()
            } else {
                ": is the user's systemd running (loginctl enable-linger), and DBUS_SESSION_BUS_ADDRESS or XDG_RUNTIME_DIR set?".into()
            },
        })?;
        // A systemd job of a scope takes milliseconds; a stuck bus must not hang a launch.
        let _ = sock.set_read_timeout(Some(Duration::from_secs(30)));
        let mut bus = Bus {
            sock,
            path: path.into(),
            serial: 0,
            signals: Vec::new(),
        };
        bus.auth()?;
        bus.call(
            "org.freedesktop.DBus",
            "/org/freedesktop/DBus",
            "org.freedesktop.DBus",
            "Hello",
            &[],
        )?;
        Ok(bus)
    }

    fn protocol(&self, why: impl Into<String>) -> BusError {
        BusError::Protocol {
            bus: self.path.clone(),
            why: why.into(),
        }
    }

    fn io(&self, e: std::io::Error) -> BusError {
        self.protocol(e.to_string())
    }

    /// SASL: a NUL byte, AUTH EXTERNAL with no identity (the bus takes the socket's peer
    /// credentials as they are in its own user namespace: inside an engine's user namespace
    /// our uid is 0 there, not the user the bus knows), DATA, BEGIN.
    fn auth(&mut self) -> Result<(), BusError> {
        self.sock
            .write_all(b"\0AUTH EXTERNAL\r\nDATA\r\n")
            .map_err(|e| self.io(e))?;
        loop {
            let line = self.line()?;
            if line.starts_with("OK ") {
                break;
            }
            if line != "DATA" {
                return Err(self.protocol(format!("authentication refused ({line})")));
            }
        }
        self.sock.write_all(b"BEGIN\r\n").map_err(|e| self.io(e))
    }

    /// One line of the SASL exchange, without its CR LF.
    fn line(&mut self) -> Result<String, BusError> {
        let mut line = Vec::new();
        let mut byte = [0u8; 1];
        while !line.ends_with(b"\r\n") {
            let n = self.sock.read(&mut byte).map_err(|e| self.io(e))?;
            if n == 0 || line.len() > 512 {
                return Err(self.protocol("the bus closed during authentication"));
            }
            line.push(byte[0]);
        }
        Ok(String::from_utf8_lossy(&line).trim_end().to_string())
    }

    /// Calls `member` and returns its reply; a D-Bus error reply is `BusError::Remote`.
    pub fn call(
        &mut self,
        dest: &str,
        path: &str,
        iface: &str,
        member: &str,
        args: &[Value],
    ) -> Result<Message, BusError> {
        self.serial += 1;
        let serial = self.serial;
        let mut body = Writer::default();
        let mut sig = String::new();
        for a in args {
            body.value(a);
            sig.push_str(&a.signature());
        }
        let mut fields = vec![
            (1, Value::Path(path.into())),
            (2, Value::Str(iface.into())),
            (3, Value::Str(member.into())),
            (6, Value::Str(dest.into())),
        ];
        if !sig.is_empty() {
            fields.push((8, Value::Sig(sig)));
        }
        let mut m = Writer::default();
        m.buf.extend_from_slice(&[b'l', METHOD_CALL, 0, 1]);
        m.u32(body.buf.len() as u32);
        m.u32(serial);
        m.array(8, |w| {
            for (code, v) in &fields {
                w.align(8);
                w.u8(*code);
                w.variant(v);
            }
        });
        m.align(8);
        m.buf.extend_from_slice(&body.buf);
        self.sock.write_all(&m.buf).map_err(|e| self.io(e))?;
        loop {
            let msg = self.receive()?;
            match msg.typ {
                SIGNAL => self.signals.push(msg),
                METHOD_RETURN if msg.reply_serial == Some(serial) => return Ok(msg),
                ERROR if msg.reply_serial == Some(serial) => {
                    let mut r = Reader::new(&msg.body);
                    let text = if msg.signature.starts_with('s') {
                        r.str().unwrap_or_default()
                    } else {
                        String::new()
                    };
                    return Err(BusError::Remote {
                        method: format!("{iface}.{member}"),
                        name: msg.error.unwrap_or_default(),
                        message: text,
                    });
                }
                _ => {}
            }
        }
    }

    /// The first signal, received before or now, that `wanted` accepts.
    pub fn wait_signal(&mut self, wanted: impl Fn(&Message) -> bool) -> Result<Message, BusError> {
        if let Some(i) = self.signals.iter().position(&wanted) {
            return Ok(self.signals.remove(i));
        }
        loop {
            let msg = self.receive()?;
            if msg.typ == SIGNAL && wanted(&msg) {
                return Ok(msg);
            }
        }
    }

    fn read_exact(&mut self, buf: &mut [u8]) -> Result<(), BusError> {
        self.sock.read_exact(buf).map_err(|e| self.io(e))
    }

    fn receive(&mut self) -> Result<Message, BusError> {
        let mut fixed = [0u8; 16];
        self.read_exact(&mut fixed)?;
        if fixed[0] != b'l' {
            return Err(self.protocol("a big-endian message, which nsboot does not read"));
        }
        let word = |i: usize| u32::from_le_bytes(fixed[i..i + 4].try_into().unwrap()) as usize;
        let (body_len, fields_len) = (word(4), word(12));
        if body_len > 1 << 26 || fields_len > 1 << 26 {
            return Err(self.protocol("a message larger than D-Bus allows"));
        }
        let header_end = (16 + fields_len).div_ceil(8) * 8;
        let mut buf = fixed.to_vec();
        buf.resize(header_end + body_len, 0);
        self.read_exact(&mut buf[16..])?;
        let mut msg = Message {
            typ: fixed[1],
            ..Default::default()
        };
        let mut r = Reader::new(&buf[..16 + fields_len]);
        r.pos = 16;
        let bad = |why: &str| self.protocol(format!("a malformed message header: {why}"));
        while r.pos < 16 + fields_len {
            r.align(8).map_err(bad)?;
            let code = r.u8().map_err(bad)?;
            let sig = r.sig().map_err(bad)?;
            let v = r.basic(&sig).map_err(bad)?.unwrap_or_default();
            match code {
                1 => msg.path = Some(v),
                2 => msg.interface = Some(v),
                3 => msg.member = Some(v),
                4 => msg.error = Some(v),
                5 => msg.reply_serial = v.parse().ok(),
                8 => msg.signature = v,
                _ => {}
            }
        }
        msg.body = buf.split_off(header_end);
        Ok(msg)
    }
}
