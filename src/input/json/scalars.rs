//! Reading and skipping JSON's scalars: strings, numbers and literals.

use super::*;

impl Reader<'_> {
    /// Passes over an object's key and the colon after it.
    pub(super) fn skip_key(&mut self) -> Result<(), Problem> {
        self.skip_string()?;
        self.skip_space();
        if self.bytes.get(self.at) != Some(&b':') {
            return Err(Problem::Syntax(self.at));
        }
        self.at += 1;
        Ok(())
    }

    /// Reads past a value without building it, checking it is JSON as [`Self::value`] would.
    pub(super) fn skip(&mut self, depth: usize) -> Result<(), Problem> {
        self.skip_space();
        let start = self.at;
        match self.bytes.get(start) {
            Some(b'{' | b'[') => {
                let close = if self.bytes[start] == b'{' { b'}' } else { b']' };
                let pos = self.pos_at(start);
                self.enter(depth, pos)?;
                self.at += 1;
                self.skip_space();
                if self.bytes.get(self.at) == Some(&close) {
                    self.at += 1;
                    return Ok(());
                }
                loop {
                    if close == b'}' {
                        self.skip_space();
                        if self.bytes.get(self.at) != Some(&b'"') {
                            return Err(Problem::Syntax(self.at));
                        }
                        self.skip_key()?;
                    }
                    self.skip(depth + 1)?;
                    self.skip_space();
                    match self.bytes.get(self.at) {
                        Some(b',') => self.at += 1,
                        Some(&b) if b == close => {
                            self.at += 1;
                            return Ok(());
                        }
                        _ => return Err(Problem::Syntax(self.at)),
                    }
                }
            }
            Some(b'"') => self.skip_string(),
            Some(b't') => self.literal("true", Value::Null).map(drop),
            Some(b'f') => self.literal("false", Value::Null).map(drop),
            Some(b'n') => self.literal("null", Value::Null).map(drop),
            Some(b'-' | b'0'..=b'9') => self.number().map(drop),
            _ => Err(Problem::Syntax(start)),
        }
    }

    /// Reads past a string, checking its escapes as serde_json would, without decoding it.
    pub(super) fn skip_string(&mut self) -> Result<(), Problem> {
        let mut i = self.at + 1;
        loop {
            i = self.string_stop(i);
            match self.bytes.get(i) {
                Some(b'"') => break,
                Some(b'\\') => match self.bytes.get(i + 1) {
                    Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => i += 2,
                    Some(b'u')
                        if self
                            .bytes
                            .get(i + 2..i + 6)
                            .is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit)) =>
                    {
                        i += 6
                    }
                    _ => return Err(Problem::Syntax(i)),
                },
                Some(&b) if b < 0x20 => return Err(Problem::Syntax(i)),
                Some(_) => {
                    self.line_ascii = false;
                    i += 1;
                }
                None => return Err(Problem::Syntax(self.bytes.len())),
            }
        }
        self.at = i + 1;
        Ok(())
    }

    pub(super) fn string(&mut self) -> Result<String, Problem> {
        let start = self.at;
        let mut i = start + 1;
        let mut escaped = false;
        loop {
            i = self.string_stop(i);
            match self.bytes.get(i) {
                Some(b'"') => break,
                Some(b'\\') => {
                    escaped = true;
                    i += 2;
                }
                Some(&b) if b < 0x20 => return Err(Problem::Syntax(i)),
                Some(_) => {
                    self.line_ascii = false;
                    i += 1;
                }
                None => return Err(Problem::Syntax(self.bytes.len())),
            }
        }
        self.at = i + 1;
        if !escaped {
            return Ok(self.text[start + 1..i].to_owned());
        }
        serde_json::from_str::<String>(&self.text[start..=i]).map_err(|_| Problem::Syntax(start))
    }

    pub(super) fn literal(&mut self, word: &str, value: Value) -> Result<Value, Problem> {
        if self.bytes[self.at..].starts_with(word.as_bytes()) {
            self.at += word.len();
            Ok(value)
        } else {
            Err(Problem::Syntax(self.at))
        }
    }

    pub(super) fn number(&mut self) -> Result<Value, Problem> {
        let start = self.at;
        let digits = |bytes: &[u8], mut i: usize| {
            let from = i;
            while bytes.get(i).is_some_and(u8::is_ascii_digit) {
                i += 1;
            }
            (i, i - from)
        };
        let mut i = start + usize::from(self.bytes[start] == b'-');
        let (after, count) = digits(self.bytes, i);
        if count == 0 || (count > 1 && self.bytes[i] == b'0') {
            return Err(Problem::Syntax(i));
        }
        i = after;
        let mut whole = true;
        if self.bytes.get(i) == Some(&b'.') {
            whole = false;
            let (after, count) = digits(self.bytes, i + 1);
            if count == 0 {
                return Err(Problem::Syntax(after));
            }
            i = after;
        }
        if matches!(self.bytes.get(i), Some(b'e' | b'E')) {
            whole = false;
            i += 1;
            if matches!(self.bytes.get(i), Some(b'+' | b'-')) {
                i += 1;
            }
            let (after, count) = digits(self.bytes, i);
            if count == 0 {
                return Err(Problem::Syntax(after));
            }
            i = after;
        }
        self.at = i;
        let literal = &self.text[start..i];
        if whole && let Ok(n) = literal.parse::<i64>() {
            return Ok(Value::Int(n));
        }
        // A whole number too large for 64 bits becomes a float, as it does in YAML, so that
        // the decoder says it is out of range.
        match literal.parse::<f64>() {
            Ok(f) if f.is_finite() => Ok(Value::Float(f)),
            // serde_json says so too, but only when it reads the number into a value.
            _ => Err(Problem::Located(
                self.pos_at(start),
                Box::new(
                    Diagnostic::error("invalid JSON: number out of range")
                        .label("too large for a 64-bit float")
                        .help("write a smaller number"),
                ),
            )),
        }
    }
}
