//! What the two SVG pictures (the Lamport diagram and the OM tree) share: escaping text
//! for XML and the opening of a document.

use std::fmt::Write as _;

/// `s` as XML text or attribute content: `& < > " '` escaped, tabs and line breaks as
/// spaces, and characters XML 1.0 cannot carry (other control characters, U+FFFE, U+FFFF)
/// replaced with U+FFFD.
pub(super) fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(' '),
            '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..='\u{10FFFF}' => {
                out.push(c)
            }
            _ => out.push('\u{FFFD}'),
        }
    }
    out
}

/// The opening of an SVG document of this size.
pub(super) fn svg_open(out: &mut String, width: f64, height: f64, title: &str) {
    let _ = write!(
        out,
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width:.0}\" height=\"{height:.0}\" \
         viewBox=\"0 0 {width:.0} {height:.0}\" font-family=\"sans-serif\">\n\
         <title>{}</title>\n\
         <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n",
        esc(title)
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping() {
        assert_eq!(esc("<&>\"'"), "&lt;&amp;&gt;&quot;&apos;");
        assert_eq!(esc("a\nb\u{0}c\u{FFFF}"), "a b\u{FFFD}c\u{FFFD}");
    }
}
