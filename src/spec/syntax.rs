//! Syntax errors in config.json: serde_json's line and column, plus the JSON path of the
//! value being read there, found by scanning the text up to that point.

use std::path::Path;

use serde_json::error::Category;

use super::locate::join_field;
use super::SpecError;

pub(super) fn syntax_error(file: &Path, bytes: &[u8], e: &serde_json::Error) -> SpecError {
    let full = e.to_string();
    let suffix = format!(" at line {} column {}", e.line(), e.column());
    let what = full.strip_suffix(&suffix).unwrap_or(&full);
    let msg = match e.classify() {
        Category::Eof if bytes.iter().all(u8::is_ascii_whitespace) => {
            "the file is empty: write a spec into it (`nsboot spec` makes one)".to_string()
        }
        Category::Eof => {
            // serde says "EOF while parsing an object"; say it in the user's words.
            let what = what.replace("EOF while parsing", "the file ends in the middle of");
            format!("{what} (truncated?): rewrite it")
        }
        _ => format!("{what}: fix the JSON syntax"),
    };
    let offset = offset_of(bytes, e.line(), e.column());
    SpecError::Syntax {
        path: file.to_path_buf(),
        line: e.line(),
        column: e.column(),
        json_path: path_at(&bytes[..offset]),
        msg,
    }
}

/// The byte offset just before serde_json's (1-based) line and column.
fn offset_of(bytes: &[u8], line: usize, column: usize) -> usize {
    let line_start = if line <= 1 {
        0
    } else {
        bytes
            .iter()
            .enumerate()
            .filter(|(_, b)| **b == b'\n')
            .nth(line - 2)
            .map_or(bytes.len(), |(i, _)| i + 1)
    };
    (line_start + column.saturating_sub(1)).min(bytes.len())
}

enum Frame {
    Obj { key: Option<String>, in_value: bool },
    Arr { index: usize },
}

/// The JSON path of the value being read at the end of `text` (a prefix of a broken document).
pub(super) fn path_at(text: &[u8]) -> String {
    let mut stack: Vec<Frame> = Vec::new();
    let mut i = 0;
    while i < text.len() {
        match text[i] {
            b'"' => {
                let start = i + 1;
                i = start;
                while i < text.len() && text[i] != b'"' {
                    i += if text[i] == b'\\' { 2 } else { 1 };
                }
                if i >= text.len() {
                    break; // an unterminated string: the error is inside it
                }
                if let Some(Frame::Obj {
                    key,
                    in_value: false,
                }) = stack.last_mut()
                {
                    *key = Some(String::from_utf8_lossy(&text[start..i]).into_owned());
                }
            }
            b'{' => stack.push(Frame::Obj {
                key: None,
                in_value: false,
            }),
            b'[' => stack.push(Frame::Arr { index: 0 }),
            b'}' | b']' => {
                stack.pop();
            }
            b':' => {
                if let Some(Frame::Obj { in_value, .. }) = stack.last_mut() {
                    *in_value = true;
                }
            }
            b',' => match stack.last_mut() {
                Some(Frame::Obj { key, in_value }) => {
                    *key = None;
                    *in_value = false;
                }
                Some(Frame::Arr { index }) => *index += 1,
                None => {}
            },
            _ => {}
        }
        i += 1;
    }
    let mut path = String::new();
    for frame in &stack {
        match frame {
            Frame::Obj { key: Some(k), .. } => path = join_field(&path, k),
            Frame::Obj { key: None, .. } => break,
            Frame::Arr { index } => path.push_str(&format!("[{index}]")),
        }
    }
    path
}
