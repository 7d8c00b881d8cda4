//! Text as the case table and predictions.csv readers need it.

/// CRLF and bare CR line ends as LF. The `csv` reader ends records at any
/// of them but counts lines by LF and starts a CRLF file's records on the
/// line before; with LF only, every error names its true line.
pub fn lf_line_ends(bytes: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    if !bytes.contains(&b'\r') {
        return std::borrow::Cow::Borrowed(bytes);
    }
    let mut lf = Vec::with_capacity(bytes.len());
    let mut rest = bytes.iter().peekable();
    while let Some(&b) = rest.next() {
        if b == b'\r' {
            rest.next_if_eq(&&b'\n');
            lf.push(b'\n');
        } else {
            lf.push(b);
        }
    }
    std::borrow::Cow::Owned(lf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_line_end_becomes_lf() {
        assert_eq!(lf_line_ends(b"a\r\nb\rc\nd").as_ref(), b"a\nb\nc\nd");
        assert!(matches!(
            lf_line_ends(b"a\nb"),
            std::borrow::Cow::Borrowed(_)
        ));
    }
}
