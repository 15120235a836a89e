//! Text analysis for mixed Chinese/English messages.
//!
//! Chinese (and Japanese, Korean) is written without spaces, and a word segmenter can cut the
//! same characters differently in a document and in a query ("大数据库存" may come out as
//! 大数据 / 库存, so a query for 数据库 would miss it). So every run of CJK characters is
//! indexed three ways, at positions counted in characters:
//!
//! * each character (unigram) — one-character queries;
//! * each pair of neighbouring characters (bigram) — a query of n ≥ 2 characters becomes the
//!   phrase of its n−1 bigrams at consecutive positions, which matches exactly the documents
//!   that contain it as a substring, however a segmenter would cut them;
//! * jieba's words of three or more characters (search mode) — they only add score, so a
//!   document where the query is a whole word ranks above one where it straddles two words.
//!
//! Everything else is split into words on non-alphanumeric characters, lower-cased, folded
//! to ASCII ("café" → "cafe") and stemmed as English ("running" → "run").

use tantivy::tokenizer::{
    AsciiFoldingFilter, Language, LowerCaser, RawTokenizer, RemoveLongFilter, Stemmer,
    TextAnalyzer, Token, TokenStream, Tokenizer,
};
use tantivy_jieba::JiebaTokenizer;

/// The name the analyzer is registered under in the index.
pub const NAME: &str = "hearth";

/// Tokens longer than this (in bytes) are dropped: nobody searches for them, and tantivy
/// refuses terms over 64 KiB anyway.
const MAX_TOKEN_BYTES: usize = 100;

/// The analyzer of the `text` field, for indexing and snippets alike.
pub fn analyzer() -> TextAnalyzer {
    with_filters(MixedTokenizer::default(), MAX_TOKEN_BYTES)
}

/// One token filter chain for documents and queries, so both normalize alike.
fn with_filters<T: Tokenizer>(tokenizer: T, max_bytes: usize) -> TextAnalyzer {
    TextAnalyzer::builder(tokenizer)
        .filter(RemoveLongFilter::limit(max_bytes))
        .filter(LowerCaser)
        .filter(AsciiFoldingFilter)
        // English suffix rules leave CJK tokens (which end in no Latin letter) untouched.
        .filter(Stemmer::new(Language::English))
        .build()
}

/// One query word or CJK n-gram, normalized exactly as the analyzer normalizes tokens. A
/// word too long to be indexed stays as it is, so that it matches nothing.
pub fn normalize(term: &str) -> String {
    let mut analyzer = with_filters(RawTokenizer::default(), usize::MAX);
    let mut stream = analyzer.token_stream(term);
    match stream.next() {
        Some(token) if term.len() <= MAX_TOKEN_BYTES => token.text.clone(),
        _ => term.to_owned(),
    }
}

/// Whether `c` is written without spaces between words (Han, kana, Hangul).
pub fn is_cjk(c: char) -> bool {
    matches!(c as u32,
        0x3040..=0x30FF      // Hiragana, Katakana
        | 0x31F0..=0x31FF    // Katakana phonetic extensions
        | 0x3400..=0x4DBF    // CJK extension A
        | 0x4E00..=0x9FFF    // CJK unified ideographs
        | 0xAC00..=0xD7AF    // Hangul syllables
        | 0xF900..=0xFAFF    // CJK compatibility ideographs
        | 0x20000..=0x3134F  // CJK extensions B–G and compatibility supplement
    )
}

/// A stretch of text: a Latin/digit word or a run of CJK characters, with its byte range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Segment<'a> {
    Word(&'a str, usize),
    Cjk(&'a str, usize),
}

/// Splits text into words and CJK runs; everything else separates them.
pub fn segments<'a>(text: &'a str) -> Vec<Segment<'a>> {
    #[derive(PartialEq, Clone, Copy)]
    enum Class {
        Word,
        Cjk,
        Gap,
    }
    let class = |c: char| {
        if is_cjk(c) {
            Class::Cjk
        } else if c.is_alphanumeric() {
            Class::Word
        } else {
            Class::Gap
        }
    };
    let mut out = Vec::new();
    let mut start = 0;
    let mut current = Class::Gap;
    let close = |out: &mut Vec<Segment<'a>>, class: Class, start: usize, end: usize| {
        let s = &text[start..end];
        match class {
            Class::Word => out.push(Segment::Word(s, start)),
            Class::Cjk => out.push(Segment::Cjk(s, start)),
            Class::Gap => {}
        }
    };
    for (i, c) in text.char_indices() {
        let k = class(c);
        if k != current {
            close(&mut out, current, start, i);
            start = i;
            current = k;
        }
    }
    close(&mut out, current, start, text.len());
    out
}

/// Words, and CJK runs as unigrams + bigrams + long jieba words (see the module docs).
#[derive(Clone, Default)]
pub struct MixedTokenizer {
    jieba: JiebaTokenizerHolder,
}

/// `JiebaTokenizer` shares one lazily loaded dictionary; this only gives it a `Default`.
#[derive(Clone)]
struct JiebaTokenizerHolder(JiebaTokenizer);

impl Default for JiebaTokenizerHolder {
    fn default() -> Self {
        JiebaTokenizerHolder(JiebaTokenizer::with_search_mode(true))
    }
}

pub struct MixedTokenStream {
    tokens: Vec<Token>,
    next: usize,
}

impl TokenStream for MixedTokenStream {
    fn advance(&mut self) -> bool {
        self.next += 1;
        self.next <= self.tokens.len()
    }

    fn token(&self) -> &Token {
        &self.tokens[self.next - 1]
    }

    fn token_mut(&mut self) -> &mut Token {
        &mut self.tokens[self.next - 1]
    }
}

impl Tokenizer for MixedTokenizer {
    type TokenStream<'a> = MixedTokenStream;

    fn token_stream<'a>(&'a mut self, text: &'a str) -> MixedTokenStream {
        let mut tokens = Vec::new();
        let mut position = 0;
        for segment in segments(text) {
            match segment {
                Segment::Word(word, offset) => {
                    tokens.push(token(word, offset, position));
                    position += 1;
                }
                Segment::Cjk(run, offset) => {
                    position += self.cjk_tokens(run, offset, position, &mut tokens);
                }
            }
        }
        MixedTokenStream { tokens, next: 0 }
    }
}

fn token(text: &str, offset: usize, position: usize) -> Token {
    Token {
        offset_from: offset,
        offset_to: offset + text.len(),
        position,
        text: text.to_owned(),
        position_length: 1,
    }
}

impl MixedTokenizer {
    /// Appends the tokens of one CJK run starting at byte `offset` and token `position`;
    /// returns how many positions it took (its length in characters).
    fn cjk_tokens(
        &mut self,
        run: &str,
        offset: usize,
        position: usize,
        out: &mut Vec<Token>,
    ) -> usize {
        let chars: Vec<(usize, char)> = run.char_indices().collect();
        let mut tokens = Vec::with_capacity(chars.len() * 2);
        for (i, &(at, _)) in chars.iter().enumerate() {
            let end = chars.get(i + 1).map_or(run.len(), |&(next, _)| next);
            tokens.push(token(&run[at..end], offset + at, position + i));
            if let Some(&(_, second)) = chars.get(i + 1) {
                let end = end + second.len_utf8();
                tokens.push(token(&run[at..end], offset + at, position + i));
            }
        }
        let mut words = self.jieba.0.token_stream(run);
        while let Some(word) = words.next() {
            // One- and two-character words are already there as unigrams and bigrams.
            if word.text.chars().count() >= 3 {
                // tantivy-jieba's positions are character offsets within the run.
                tokens.push(token(
                    &word.text,
                    offset + word.offset_from,
                    position + word.position,
                ));
            }
        }
        // Positions of one term must not decrease within a document (tantivy delta-encodes
        // them): emit in position order, shorter first, without duplicates.
        tokens.sort_by_key(|t| (t.position, t.text.len()));
        tokens.dedup_by(|a, b| a.position == b.position && a.text == b.text);
        out.extend(tokens);
        chars.len()
    }
}

/// The analyzed terms of `text`, in order (what the index stores for it).
pub fn terms(text: &str) -> Vec<String> {
    let mut analyzer = analyzer();
    let mut stream = analyzer.token_stream(text);
    let mut out = Vec::new();
    while let Some(token) = stream.next() {
        out.push(token.text.clone());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn has(text: &str, term: &str) -> bool {
        terms(text).iter().any(|t| t == term)
    }

    #[test]
    fn english_is_lower_cased_folded_and_stemmed() {
        assert_eq!(terms("Running RUNS run"), ["run", "run", "run"]);
        assert_eq!(terms("Databases, café!"), ["databas", "cafe"]);
        assert_eq!(terms("v2.0 2024"), ["v2", "0", "2024"]);
    }

    #[test]
    fn chinese_two_character_words_are_terms() {
        assert!(has("你好世界", "你好"));
        assert!(has("大家好，你好吗", "你好"));
        assert!(has("我们用数据库", "数据"));
        assert!(has("我们用数据库", "据库"));
        // Single characters too, for one-character queries.
        assert!(has("好", "好"));
    }

    #[test]
    fn jieba_words_of_three_or_more_characters_are_terms() {
        assert!(has("我在北京大学读书", "北京大学"));
        assert!(has("请备份数据库", "数据库"));
    }

    #[test]
    fn bigram_positions_follow_characters() {
        let mut analyzer = analyzer();
        let mut stream = analyzer.token_stream("hi 数据库 ok");
        let mut seen = Vec::new();
        while let Some(t) = stream.next() {
            seen.push((t.text.clone(), t.position, t.offset_from, t.offset_to));
        }
        let find = |term: &str| seen.iter().find(|s| s.0 == term).cloned().unwrap();
        assert_eq!(find("hi").1, 0);
        assert_eq!(find("数据").1, 1);
        assert_eq!(find("据库").1, 2);
        assert_eq!(find("ok").1, 4);
        // Offsets are bytes of the original text, for highlighting.
        assert_eq!((find("数据").2, find("数据").3), (3, 9));
        // Positions never decrease.
        assert!(seen.windows(2).all(|w| w[0].1 <= w[1].1));
    }

    #[test]
    fn mixed_text_splits_at_script_changes() {
        assert_eq!(
            segments("用MySQL存储"),
            [
                Segment::Cjk("用", 0),
                Segment::Word("MySQL", 3),
                Segment::Cjk("存储", 8)
            ]
        );
        assert!(has("用MySQL存储", "mysql"));
        assert!(has("用MySQL存储", "存储"));
    }

    #[test]
    fn punctuation_and_emoji_separate_and_vanish() {
        assert_eq!(terms("hello, 🌍 world!"), ["hello", "world"]);
        assert!(terms("…！？ 🎉").is_empty());
    }
}
