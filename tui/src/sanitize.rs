//! The one way guest text reaches a cell of the UI.

/// Text safe for one terminal line: control characters escaped, newlines shown as `\n`,
/// tabs as a space.
pub fn sanitize(s: &str) -> String {
    coroner_analyze::escape_control(s)
        .replace('\n', "\\n")
        .replace('\t', " ")
}
