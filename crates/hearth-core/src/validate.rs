//! Input validation, by bytes as the reference chat room does it.

use unicode_normalization::UnicodeNormalization;

/// Why an input was refused; the message is shown to the user.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Invalid(pub String);

/// A username is what others see of someone, so it must look like what it is: no invisible
/// characters (a name with a zero-width space inside looks like another user's), no white
/// space but plain spaces inside, and at least one letter or digit (no blank names).
pub fn username(s: &str) -> Result<(), Invalid> {
    if !(4..=100).contains(&s.len()) {
        return Err(Invalid("username must be 4 to 100 bytes long".into()));
    }
    if s.trim() != s || s.chars().any(char::is_control) {
        return Err(Invalid(
            "username must not start or end with spaces or contain control characters".into(),
        ));
    }
    if s.chars()
        .any(|c| is_invisible(c) || (c.is_whitespace() && c != ' '))
    {
        return Err(Invalid(
            "username must not contain invisible characters or white space other than spaces"
                .into(),
        ));
    }
    if !s.chars().any(char::is_alphanumeric) {
        return Err(Invalid(
            "username needs at least one letter or digit".into(),
        ));
    }
    // Fullwidth letters, ligatures, circled and styled letters are another user's name in
    // disguise ("ａｌｉｃｅ" is "alice"); only the plain (NFKC) form is taken.
    let plain: String = s.nfkc().collect();
    if plain != s {
        return Err(Invalid(format!(
            "username must be written in plain characters (no fullwidth, styled or combined \
             forms); did you mean {plain:?}?"
        )));
    }
    if mixes_lookalike_scripts(s) {
        return Err(Invalid(
            "username must not mix Latin, Greek and Cyrillic letters (many look alike)".into(),
        ));
    }
    Ok(())
}

/// Latin, Greek and Cyrillic share letters that look the same ("а" and "a", "ο" and "o"), so a
/// name with letters of two of them can pass for a name in one. Other scripts mix freely
/// (Chinese with Latin is common).
fn mixes_lookalike_scripts(s: &str) -> bool {
    #[derive(PartialEq, Clone, Copy)]
    enum Script {
        Latin,
        Greek,
        Cyrillic,
    }
    let script = |c: char| match c {
        'a'..='z' | 'A'..='Z' | '\u{00C0}'..='\u{024F}' | '\u{1E00}'..='\u{1EFF}' => {
            Some(Script::Latin)
        }
        '\u{0370}'..='\u{03FF}' | '\u{1F00}'..='\u{1FFF}' => Some(Script::Greek),
        '\u{0400}'..='\u{052F}'
        | '\u{1C80}'..='\u{1C8F}'
        | '\u{2DE0}'..='\u{2DFF}'
        | '\u{A640}'..='\u{A69F}' => Some(Script::Cyrillic),
        _ => None,
    };
    let mut seen = None;
    for found in s.chars().filter(|c| c.is_alphabetic()).filter_map(script) {
        match seen {
            None => seen = Some(found),
            Some(first) if first != found => return true,
            Some(_) => {}
        }
    }
    false
}

/// Characters that show nothing: format characters (zero-width spaces and joiners, direction
/// marks and overrides, the byte-order mark, tags, …) and letters drawn blank (the Hangul
/// fillers, the empty Braille pattern).
fn is_invisible(c: char) -> bool {
    matches!(c,
        '\u{00AD}' | '\u{034F}' | '\u{061C}' | '\u{115F}' | '\u{1160}' | '\u{17B4}' | '\u{17B5}'
        | '\u{180B}'..='\u{180F}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}'
        | '\u{2060}'..='\u{206F}' | '\u{2800}' | '\u{3164}' | '\u{FEFF}' | '\u{FFA0}'
        | '\u{FFF0}'..='\u{FFFB}' | '\u{1D173}'..='\u{1D17A}' | '\u{E0000}'..='\u{E007F}')
}

/// A text that shows nothing: only white space and invisible characters.
fn is_blank(s: &str) -> bool {
    s.chars().all(|c| c.is_whitespace() || is_invisible(c))
}

/// Control characters other than tabs and line breaks (NUL, escape sequences, …), which a
/// message or a name has no use for and which some terminals and clients act on.
fn has_stray_controls(s: &str) -> bool {
    s.chars()
        .any(|c| c.is_control() && !matches!(c, '\t' | '\n' | '\r'))
}

/// What is wrong with a text people read (a message, a caption, a name), if anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextProblem {
    /// Shows nothing ([`is_blank`]), where something is needed.
    Blank,
    /// Holds control characters other than tabs and line breaks ([`has_stray_controls`]).
    StrayControls,
    /// More than the limit, in characters (Unicode scalar values).
    TooLong,
}

/// The one check of a readable text: at most `max_chars` characters, no stray control
/// characters and, unless `may_be_blank` (a caption), something to see.
pub fn readable_text(s: &str, max_chars: usize, may_be_blank: bool) -> Result<(), TextProblem> {
    if !may_be_blank && is_blank(s) {
        return Err(TextProblem::Blank);
    }
    if has_stray_controls(s) {
        return Err(TextProblem::StrayControls);
    }
    if s.chars().count() > max_chars {
        return Err(TextProblem::TooLong);
    }
    Ok(())
}

/// A name shown on one line (a group's, a room's): a [`readable_text`] with no control
/// characters at all — not even tabs and line breaks, which a message may hold — nor the
/// Unicode line and paragraph separators. Those are [`TextProblem::StrayControls`] here.
pub fn single_line_text(s: &str, max_chars: usize) -> Result<(), TextProblem> {
    readable_text(s, max_chars, false)?;
    if s.chars().any(breaks_the_line) {
        return Err(TextProblem::StrayControls);
    }
    Ok(())
}

/// Control characters (tabs and line breaks included) and the Unicode line and paragraph
/// separators, which are not control characters but start a new line all the same.
fn breaks_the_line(c: char) -> bool {
    c.is_control() || matches!(c, '\u{2028}' | '\u{2029}')
}

pub fn password(s: &str) -> Result<(), Invalid> {
    if !(10..=100).contains(&s.len()) {
        return Err(Invalid("password must be 10 to 100 bytes long".into()));
    }
    Ok(())
}

/// An email is at most 100 bytes and looks like `local@domain.tld`.
pub fn email(s: &str) -> Result<(), Invalid> {
    let bad = || Invalid("email must be a valid address of at most 100 bytes".into());
    if s.is_empty() || s.len() > 100 {
        return Err(bad());
    }
    let (local, domain) = s.rsplit_once('@').ok_or_else(bad)?;
    let local_ok = !local.is_empty()
        && local
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+/=?^_`{|}~.-".contains(&b))
        && !local.starts_with('.')
        && !local.ends_with('.')
        && !local.contains("..");
    let labels: Vec<&str> = domain.split('.').collect();
    let domain_ok = labels.len() >= 2
        && labels.iter().all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        });
    if local_ok && domain_ok {
        Ok(())
    } else {
        Err(bad())
    }
}

/// Emails are compared case-insensitively: stored and looked up in lower case.
pub fn normalize_email(s: &str) -> String {
    s.to_ascii_lowercase()
}

/// Room ids are short and URL-safe: `[A-Za-z0-9_.-]{1,64}`.
pub fn room_slug(s: &str) -> Result<(), Invalid> {
    if s.is_empty()
        || s.len() > 64
        || !s
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
    {
        return Err(Invalid(format!(
            "room id {s:?} must be 1 to 64 characters of A-Z a-z 0-9 _ . -"
        )));
    }
    Ok(())
}

pub fn room_name(s: &str) -> Result<(), Invalid> {
    if s.len() > 100 || single_line_text(s, usize::MAX).is_err() {
        return Err(Invalid(
            "room name must be 1 to 100 bytes on one line, without control characters".into(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_must_look_like_what_they_are() {
        for ok in [
            "ann1",
            "Ann Lee",
            "张伟伟",
            "zoë_92",
            "ÅSA-ö",
            "Иван Петров",
            "Σωκράτης",
            "李lee_99",
            "ёжик",
        ] {
            assert!(username(ok).is_ok(), "{ok}");
        }
        for bad in [
            "mal\u{200B}lory",
            "mallory\u{200B}",
            "\u{FEFF}mallory",
            "\u{202E}mallory",
            "mallory\u{2028}x",
            "\u{200B}\u{200B}\u{200B}\u{200B}",
            "\u{3164}\u{3164}",
            "\u{2800}\u{2800}",
            "ann\u{00A0}lee",
            "!!!!",
            " ann",
            "a\u{0007}nn",
            // Another name in disguise: fullwidth, ligature, styled, decomposed.
            "ａｌｉｃｅ",
            "ﬁona",
            "𝐚𝐥𝐢𝐜𝐞",
            "zoe\u{0308}_92",
            // Look-alike letters from two scripts: Cyrillic "а", Greek "ο".
            "\u{0430}lice",
            "b\u{03BF}bby",
            "Иван Ivan",
        ] {
            assert!(username(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn blank_and_control_characters() {
        assert!(is_blank(" \u{200B}\u{200B}\n"));
        assert!(!is_blank("👨\u{200D}👩"));
        assert!(has_stray_controls("\u{0000}x"));
        assert!(has_stray_controls("\u{001B}[31m"));
        assert!(!has_stray_controls("line\nnext\tcell\r\n"));
    }

    #[test]
    fn names_are_one_line() {
        for ok in ["General", "Équipe 团队 🚀", "a b", "👨\u{200D}👩"] {
            assert_eq!(single_line_text(ok, 100), Ok(()), "{ok:?}");
            assert!(room_name(ok).is_ok(), "{ok:?}");
        }
        for bad in [
            "line1\nline2",
            "line1\r\nline2",
            "cr\r",
            "tab\there",
            "bell\u{0007}",
            "nul\u{0000}",
            "esc\u{001B}[31m",
            "del\u{007F}",
            "next\u{0085}line",
            "line\u{2028}separator",
            "para\u{2029}separator",
        ] {
            assert_eq!(
                single_line_text(bad, 100),
                Err(TextProblem::StrayControls),
                "{bad:?}"
            );
            assert!(room_name(bad).is_err(), "{bad:?}");
        }
        assert_eq!(single_line_text(" \u{200B}", 100), Err(TextProblem::Blank));
        assert_eq!(single_line_text("abc", 2), Err(TextProblem::TooLong));
        // What a message may hold, a name may not.
        assert_eq!(readable_text("line1\nline2\tcell", 100, false), Ok(()));
    }

    #[test]
    fn emails() {
        for ok in ["a@b.co", "first.last+tag@mail.example.org", "x_y@d-1.io"] {
            assert!(email(ok).is_ok(), "{ok}");
        }
        let long = format!("{}@example.com", "a".repeat(90));
        for bad in [
            "", "a", "a@b", "@b.co", "a@.co", "a@b..co", "a b@c.de", ".a@b.co", "a@-b.co", &long,
        ] {
            assert!(email(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn lengths_are_bytes() {
        assert!(username("abc").is_err());
        assert!(username("abcd").is_ok());
        assert!(username("éé").is_ok()); // 4 bytes
        assert!(username(&"a".repeat(101)).is_err());
        assert!(password("123456789").is_err());
        assert!(password("1234567890").is_ok());
        assert!(password(&"a".repeat(101)).is_err());
    }
}
