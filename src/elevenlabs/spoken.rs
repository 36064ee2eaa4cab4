//! The few sentences the operator and its routes speak themselves, not the agent, per
//! ElevenLabs language code. Each table's first entry is English, the
//! fallback for every language without a sentence of its own.

/// A sentence per language code.
pub type Phrase = [(&'static str, &'static str)];

/// What a disabled agent says: its first message, and every answer of
/// the custom-LLM route.
pub const CLOSING: &Phrase = &[
    (
        "en",
        "Sorry, this line is not taking calls at the moment, please call again later.",
    ),
    (
        "ro",
        "Ne pare rău, această linie nu preia apeluri în acest moment, vă rugăm să reveniți mai târziu.",
    ),
];

/// Said while a turn is still thinking, so that ElevenLabs hears words
/// before its cascade timeout. It ends in `"... "`: ElevenLabs' custom-LLM
/// guide ("Buffer words", elevenlabs-docs
/// `customization/custom-llm/overview.mdx`) asks for an ellipsis and a
/// space, so that the words after it are not glued to it in speech.
pub const BUFFER_WORDS: &Phrase = &[("en", "One moment... "), ("ro", "Un moment... ")];

/// Said instead of a transfer the agent asked for to a number that cannot
/// be dialled.
pub const TRANSFER_REFUSED: &Phrase = &[
    (
        "en",
        "I am sorry, I cannot transfer you right now. How else can I help?",
    ),
    (
        "ro",
        "Îmi pare rău, nu vă pot transfera acum. Cu ce altceva vă pot ajuta?",
    ),
];

/// What the caller hears while a transfer is made, when the agent gave no
/// words of its own (ElevenLabs' `client_message`).
pub const TRANSFER_HOLD: &Phrase = &[
    ("en", "Please hold while I connect you to a colleague."),
    (
        "ro",
        "Vă rog să rămâneți pe linie, vă transfer la un coleg.",
    ),
];

/// The sentence of `phrase` for `language`, English when it has none (or
/// when the language is not known). `pt-br` and the like share their base
/// language's sentence.
pub fn in_language(phrase: &Phrase, language: Option<&str>) -> &'static str {
    let language = language.unwrap_or_default();
    let base = language.split(['-', '_']).next().unwrap_or_default();
    phrase
        .iter()
        .find(|(code, _)| code.eq_ignore_ascii_case(base))
        .unwrap_or(&phrase[0])
        .1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sentences_follow_the_language_and_fall_back_to_english() {
        assert_eq!(in_language(BUFFER_WORDS, Some("ro")), "Un moment... ");
        assert_eq!(in_language(BUFFER_WORDS, Some("RO-md")), "Un moment... ");
        assert_eq!(in_language(BUFFER_WORDS, Some("ja")), "One moment... ");
        assert_eq!(in_language(BUFFER_WORDS, None), "One moment... ");
        for phrase in [BUFFER_WORDS, TRANSFER_REFUSED, TRANSFER_HOLD] {
            assert_eq!(phrase[0].0, "en");
        }
        for (_, words) in BUFFER_WORDS {
            assert!(words.ends_with("... "), "{words:?}");
        }
    }
}
