//! A small JSON reader for criterion's result files (xtask depends on anyhow alone).
//!
//! It parses any well-formed JSON document into a [`Json`] tree; a full parser is barely longer
//! than a scan for two keys, and unlike a scan it cannot pick a key out of the wrong object.

use anyhow::{Result, bail};

/// A parsed JSON value. Objects keep their keys in document order.
#[derive(Clone, Debug, PartialEq)]
pub enum Json {
    Null,
    Bool(bool),
    Number(f64),
    String(String),
    Array(Vec<Json>),
    Object(Vec<(String, Json)>),
}

impl Json {
    /// Parses a whole document; trailing text other than whitespace is an error.
    pub fn parse(text: &str) -> Result<Json> {
        let mut parser = Parser { text: text.as_bytes(), pos: 0 };
        let value = parser.value()?;
        parser.skip_whitespace();
        if parser.pos != text.len() {
            bail!("unexpected text after the JSON value at byte {}", parser.pos);
        }
        Ok(value)
    }

    /// The value under `key`, if `self` is an object that has it.
    pub fn get(&self, key: &str) -> Option<&Json> {
        match self {
            Json::Object(entries) => entries.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// Follows a path of object keys: `path(&["median", "point_estimate"])`.
    pub fn path(&self, keys: &[&str]) -> Option<&Json> {
        keys.iter().try_fold(self, |value, key| value.get(key))
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Json::String(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Json::Number(n) => Some(*n),
            _ => None,
        }
    }
}

struct Parser<'a> {
    text: &'a [u8],
    pos: usize,
}

impl Parser<'_> {
    fn value(&mut self) -> Result<Json> {
        self.skip_whitespace();
        match self.peek() {
            Some(b'{') => self.object(),
            Some(b'[') => self.array(),
            Some(b'"') => Ok(Json::String(self.string()?)),
            Some(b't') => self.literal("true", Json::Bool(true)),
            Some(b'f') => self.literal("false", Json::Bool(false)),
            Some(b'n') => self.literal("null", Json::Null),
            Some(b'-' | b'0'..=b'9') => self.number(),
            Some(c) => bail!("unexpected `{}` at byte {}", c as char, self.pos),
            None => bail!("unexpected end of JSON"),
        }
    }

    fn object(&mut self) -> Result<Json> {
        self.expect(b'{')?;
        let mut entries = Vec::new();
        self.skip_whitespace();
        if self.eat(b'}') {
            return Ok(Json::Object(entries));
        }
        loop {
            self.skip_whitespace();
            let key = self.string()?;
            self.skip_whitespace();
            self.expect(b':')?;
            entries.push((key, self.value()?));
            self.skip_whitespace();
            if self.eat(b'}') {
                return Ok(Json::Object(entries));
            }
            self.expect(b',')?;
        }
    }

    fn array(&mut self) -> Result<Json> {
        self.expect(b'[')?;
        let mut items = Vec::new();
        self.skip_whitespace();
        if self.eat(b']') {
            return Ok(Json::Array(items));
        }
        loop {
            items.push(self.value()?);
            self.skip_whitespace();
            if self.eat(b']') {
                return Ok(Json::Array(items));
            }
            self.expect(b',')?;
        }
    }

    fn string(&mut self) -> Result<String> {
        self.expect(b'"')?;
        let mut out = String::new();
        loop {
            // Copy the run of plain bytes at once; it is valid UTF-8 because the input is a &str
            // and the run ends at an ASCII byte.
            let start = self.pos;
            while self.peek().is_some_and(|c| c != b'"' && c != b'\\') {
                self.pos += 1;
            }
            out.push_str(std::str::from_utf8(&self.text[start..self.pos])?);
            match self.next() {
                Some(b'"') => return Ok(out),
                Some(b'\\') => out.push(self.escape()?),
                _ => bail!("unterminated string"),
            }
        }
    }

    fn escape(&mut self) -> Result<char> {
        Ok(match self.next() {
            Some(b'"') => '"',
            Some(b'\\') => '\\',
            Some(b'/') => '/',
            Some(b'b') => '\u{8}',
            Some(b'f') => '\u{c}',
            Some(b'n') => '\n',
            Some(b'r') => '\r',
            Some(b't') => '\t',
            Some(b'u') => {
                let high = self.hex4()?;
                let code = if (0xD800..0xDC00).contains(&high) {
                    // A surrogate pair: the second half follows as another \u escape.
                    if !(self.eat(b'\\') && self.eat(b'u')) {
                        bail!("unpaired surrogate in string");
                    }
                    let low = self.hex4()?;
                    0x10000 + ((high - 0xD800) << 10) + (low.wrapping_sub(0xDC00) & 0x3FF)
                } else {
                    high
                };
                char::from_u32(code).unwrap_or(char::REPLACEMENT_CHARACTER)
            }
            _ => bail!("bad escape in string at byte {}", self.pos),
        })
    }

    fn hex4(&mut self) -> Result<u32> {
        let digits = self.text.get(self.pos..self.pos + 4).unwrap_or_default();
        let digits = std::str::from_utf8(digits)?;
        let code = u32::from_str_radix(digits, 16)
            .map_err(|_| anyhow::anyhow!("bad \\u escape at byte {}", self.pos))?;
        self.pos += 4;
        Ok(code)
    }

    fn number(&mut self) -> Result<Json> {
        let start = self.pos;
        while self.peek().is_some_and(|c| c.is_ascii_digit() || b"+-.eE".contains(&c)) {
            self.pos += 1;
        }
        let text = std::str::from_utf8(&self.text[start..self.pos])?;
        match text.parse() {
            Ok(n) => Ok(Json::Number(n)),
            Err(_) => bail!("bad number `{text}` at byte {start}"),
        }
    }

    fn literal(&mut self, word: &str, value: Json) -> Result<Json> {
        if !self.text[self.pos..].starts_with(word.as_bytes()) {
            bail!("unexpected text at byte {}", self.pos);
        }
        self.pos += word.len();
        Ok(value)
    }

    fn skip_whitespace(&mut self) {
        while self.peek().is_some_and(|c| c.is_ascii_whitespace()) {
            self.pos += 1;
        }
    }

    fn expect(&mut self, byte: u8) -> Result<()> {
        if !self.eat(byte) {
            bail!("expected `{}` at byte {}", byte as char, self.pos);
        }
        Ok(())
    }

    fn eat(&mut self, byte: u8) -> bool {
        let hit = self.peek() == Some(byte);
        self.pos += usize::from(hit);
        hit
    }

    fn peek(&self) -> Option<u8> {
        self.text.get(self.pos).copied()
    }

    fn next(&mut self) -> Option<u8> {
        let c = self.peek()?;
        self.pos += 1;
        Some(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_criterion_estimates() {
        let text = r#"{"mean":{"confidence_interval":{"confidence_level":0.95,"lower_bound":1.0,
            "upper_bound":2.0},"point_estimate":1.5,"standard_error":0.1},
            "median":{"confidence_interval":{"confidence_level":0.95,"lower_bound":1.0,
            "upper_bound":2.0},"point_estimate":1.25e6,"standard_error":0.2},"slope":null}"#;
        let json = Json::parse(text).unwrap();
        assert_eq!(json.path(&["median", "point_estimate"]).and_then(Json::as_f64), Some(1.25e6));
        assert_eq!(json.get("slope"), Some(&Json::Null));
    }

    #[test]
    fn reads_strings_arrays_and_escapes() {
        let json =
            Json::parse(r#" {"id": "a\/b \"c\" \u00e9\ud83d\ude00", "xs": [true, -1, []]} "#)
                .unwrap();
        assert_eq!(json.get("id").and_then(Json::as_str), Some("a/b \"c\" é😀"));
        let xs = Json::Array(vec![Json::Bool(true), Json::Number(-1.0), Json::Array(vec![])]);
        assert_eq!(json.get("xs"), Some(&xs));
    }

    #[test]
    fn rejects_broken_documents() {
        for text in ["", "{", r#"{"a" 1}"#, "[1,]", r#""open"#, "1 2", "nul"] {
            assert!(Json::parse(text).is_err(), "{text:?} parsed");
        }
    }
}
