//! Delimited records with RFC 4180 quoting, written by hand to avoid a dependency for a page of
//! code.
//!
//! A field that starts with the quote character runs to the next lone quote; inside it a doubled
//! quote is one quote, and delimiters and newlines are literal (so a record may span lines). A
//! quote inside an unquoted field is kept literally, as Python's `csv` module does. After a
//! closing quote only a delimiter or the end of the line may follow.

/// The delimiter and quote character.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Dialect {
    pub delimiter: u8,
    pub quote: Option<u8>,
}

/// One record and the 1-based line it starts on.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Record {
    pub line: usize,
    pub fields: Vec<String>,
    blank: bool,
}

impl Record {
    /// Whether the record's line held only whitespace.
    pub fn is_blank(&self) -> bool {
        self.blank
    }
}

/// A record that could not be parsed.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct RecordError {
    pub line: usize,
    pub reason: String,
}

/// Iterates over the records of decoded lines.
pub(crate) struct Records<'a> {
    lines: &'a [String],
    next: usize,
    delimiter: char,
    quote: Option<char>,
}

impl<'a> Records<'a> {
    pub fn new(lines: &'a [String], dialect: Dialect) -> Self {
        Self {
            lines,
            next: 0,
            delimiter: char::from(dialect.delimiter),
            quote: dialect.quote.map(char::from),
        }
    }
}

enum State {
    FieldStart,
    Unquoted,
    Quoted,
    /// Just after a quote inside a quoted field: the end of the field or the first of a pair.
    QuoteInQuoted,
}

impl Iterator for Records<'_> {
    type Item = Result<Record, RecordError>;

    fn next(&mut self) -> Option<Self::Item> {
        let first = self.next;
        let line = self.lines.get(first)?;
        self.next += 1;
        if line.trim().is_empty() {
            return Some(Ok(Record { line: first + 1, fields: Vec::new(), blank: true }));
        }
        let mut fields = Vec::new();
        let mut field = String::new();
        let mut state = State::FieldStart;
        let mut current = line.as_str();
        loop {
            for (column, c) in current.chars().enumerate() {
                state = match state {
                    State::FieldStart | State::Unquoted if c == self.delimiter => {
                        fields.push(std::mem::take(&mut field));
                        State::FieldStart
                    }
                    State::FieldStart if Some(c) == self.quote => State::Quoted,
                    State::FieldStart | State::Unquoted => {
                        field.push(c);
                        State::Unquoted
                    }
                    State::Quoted if Some(c) == self.quote => State::QuoteInQuoted,
                    State::Quoted => {
                        field.push(c);
                        State::Quoted
                    }
                    State::QuoteInQuoted if Some(c) == self.quote => {
                        field.push(c);
                        State::Quoted
                    }
                    State::QuoteInQuoted if c == self.delimiter => {
                        fields.push(std::mem::take(&mut field));
                        State::FieldStart
                    }
                    State::QuoteInQuoted => {
                        let reason = format!(
                            "unexpected {c:?} after a closing quote (line {}, character {})",
                            self.next,
                            column + 1
                        );
                        return Some(Err(RecordError { line: first + 1, reason }));
                    }
                };
            }
            if !matches!(state, State::Quoted) {
                break;
            }
            // The quoted field goes on over the line break.
            match self.lines.get(self.next) {
                Some(next) => {
                    field.push('\n');
                    current = next;
                    self.next += 1;
                }
                None => {
                    let reason = "quoted field is not closed before the end of the file".into();
                    return Some(Err(RecordError { line: first + 1, reason }));
                }
            }
        }
        fields.push(field);
        Some(Ok(Record { line: first + 1, fields, blank: false }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str, quote: Option<u8>) -> Vec<Result<Record, RecordError>> {
        let lines: Vec<String> = text.split('\n').map(str::to_string).collect();
        Records::new(&lines, Dialect { delimiter: b',', quote }).collect()
    }

    fn fields(record: &Result<Record, RecordError>) -> Vec<&str> {
        record.as_ref().unwrap().fields.iter().map(String::as_str).collect()
    }

    #[test]
    fn quoted_fields_hold_delimiters_quotes_and_newlines() {
        let records = parse("a,\"b, \"\"c\"\"\",d\n\"multi\nline\",x\n,,", Some(b'"'));
        assert_eq!(records.len(), 3);
        assert_eq!(fields(&records[0]), ["a", "b, \"c\"", "d"]);
        assert_eq!(fields(&records[1]), ["multi\nline", "x"]);
        assert_eq!(records[1].as_ref().unwrap().line, 2);
        assert_eq!(fields(&records[2]), ["", "", ""]);
        assert_eq!(records[2].as_ref().unwrap().line, 4);
    }

    #[test]
    fn quotes_inside_unquoted_fields_are_literal() {
        assert_eq!(fields(&parse("it's \"fine\",1", Some(b'"'))[0]), ["it's \"fine\"", "1"]);
    }

    #[test]
    fn without_quoting_every_character_is_literal() {
        assert_eq!(fields(&parse("\"a,b\"", None)[0]), ["\"a", "b\""]);
    }

    #[test]
    fn text_after_a_closing_quote_is_an_error() {
        let records = parse("ok,1\n\"a\"b,1", Some(b'"'));
        let error = records[1].as_ref().unwrap_err();
        assert_eq!(error.line, 2);
        assert!(error.reason.contains("after a closing quote"), "{}", error.reason);
    }

    #[test]
    fn an_unclosed_quote_reports_the_line_it_opened_on() {
        let records = parse("ok,1\n\"never closed,1\nmore", Some(b'"'));
        assert_eq!(records.len(), 2);
        let error = records[1].as_ref().unwrap_err();
        assert_eq!(error.line, 2);
        assert!(error.reason.contains("not closed"), "{}", error.reason);
    }

    #[test]
    fn blank_lines_are_marked() {
        let records = parse("a\n  \nb", Some(b'"'));
        assert!(records[1].as_ref().unwrap().is_blank());
        assert!(!records[2].as_ref().unwrap().is_blank());
    }
}
