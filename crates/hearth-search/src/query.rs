//! From what a user typed to a tantivy query over the `text` field.
//!
//! Every part of the query must match (AND): each word by its stem, each CJK run as a
//! substring (the phrase of its bigrams; one character by its unigram). A CJK run of three
//! or more characters also adds score when a document has it as one jieba word.

use crate::tokenizer::{Segment, normalize, segments};
use tantivy::Term;
use tantivy::query::{BooleanQuery, Occur, PhraseQuery, Query, TermQuery};
use tantivy::schema::{Field, IndexRecordOption};

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    /// One term that must be there (a stemmed word, a CJK character or pair).
    Term(String),
    /// CJK bigrams that must follow each other; and the whole run, which adds score.
    Phrase(Vec<String>, String),
}

/// A parsed query; empty if the text had nothing searchable (only punctuation, say).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextQuery {
    parts: Vec<Part>,
}

impl TextQuery {
    pub fn parse(text: &str) -> TextQuery {
        let mut parts = Vec::new();
        for segment in segments(text) {
            match segment {
                Segment::Word(word, _) => parts.push(Part::Term(normalize(word))),
                Segment::Cjk(run, _) => {
                    let chars: Vec<char> = run.chars().collect();
                    if chars.len() <= 2 {
                        parts.push(Part::Term(normalize(run)));
                    } else {
                        let bigrams = chars
                            .windows(2)
                            .map(|pair| normalize(&pair.iter().collect::<String>()))
                            .collect();
                        parts.push(Part::Phrase(bigrams, normalize(run)));
                    }
                }
            }
        }
        parts.dedup();
        TextQuery { parts }
    }

    pub fn is_empty(&self) -> bool {
        self.parts.is_empty()
    }

    pub fn build(&self, field: Field) -> Box<dyn Query> {
        let term = |text: &str| Term::from_field_text(field, text);
        let term_query = |text: &str| -> Box<dyn Query> {
            Box::new(TermQuery::new(
                term(text),
                IndexRecordOption::WithFreqsAndPositions,
            ))
        };
        let mut clauses: Vec<(Occur, Box<dyn Query>)> = Vec::new();
        for part in &self.parts {
            match part {
                Part::Term(text) => clauses.push((Occur::Must, term_query(text))),
                Part::Phrase(bigrams, word) => {
                    let phrase = PhraseQuery::new(bigrams.iter().map(|b| term(b)).collect());
                    clauses.push((Occur::Must, Box::new(phrase)));
                    clauses.push((Occur::Should, term_query(word)));
                }
            }
        }
        Box::new(BooleanQuery::new(clauses))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn terms(parts: &TextQuery) -> Vec<String> {
        parts
            .parts
            .iter()
            .flat_map(|p| match p {
                Part::Term(t) => vec![t.clone()],
                Part::Phrase(b, w) => b.iter().cloned().chain([w.clone()]).collect(),
            })
            .collect()
    }

    #[test]
    fn words_are_stemmed_like_documents() {
        assert_eq!(
            terms(&TextQuery::parse("Running Databases")),
            ["run", "databas"]
        );
    }

    #[test]
    fn cjk_runs_become_bigram_phrases() {
        assert_eq!(terms(&TextQuery::parse("你好")), ["你好"]);
        assert_eq!(terms(&TextQuery::parse("好")), ["好"]);
        assert_eq!(
            terms(&TextQuery::parse("数据库")),
            ["数据", "据库", "数据库"]
        );
        assert_eq!(terms(&TextQuery::parse("用MySQL")), ["用", "mysql"]);
    }

    #[test]
    fn punctuation_alone_is_empty() {
        assert!(TextQuery::parse("?!… ——").is_empty());
        assert!(!TextQuery::parse(" a ").is_empty());
    }
}
