//! Tokenizer (`tokenizer.json` via the `tokenizers` crate), Qwen3 chat template, multi-turn chat
//! history and streaming-safe detokenization.

use std::path::Path;

use crate::error::{Result, RuntimeError};

/// A loaded `tokenizer.json`.
pub struct Tokenizer {
    inner: tokenizers::Tokenizer,
    source: String,
}

impl std::fmt::Debug for Tokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Tokenizer({})", self.source)
    }
}

impl Tokenizer {
    /// Loads a `tokenizer.json` file.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Tokenizer> {
        let path = path.as_ref();
        let source = path.display().to_string();
        let bytes = std::fs::read(path).map_err(|source| RuntimeError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let inner =
            tokenizers::Tokenizer::from_bytes(&bytes).map_err(|e| RuntimeError::Tokenizer {
                path: source.clone(),
                msg: e.to_string(),
            })?;
        Ok(Tokenizer { inner, source })
    }

    /// Parses a `tokenizer.json` held in memory.
    pub fn from_bytes(bytes: &[u8]) -> Result<Tokenizer> {
        let inner =
            tokenizers::Tokenizer::from_bytes(bytes).map_err(|e| RuntimeError::Tokenizer {
                path: "<memory>".into(),
                msg: e.to_string(),
            })?;
        Ok(Tokenizer {
            inner,
            source: "<memory>".into(),
        })
    }

    fn err(&self, e: impl std::fmt::Display) -> RuntimeError {
        RuntimeError::Tokenizer {
            path: self.source.clone(),
            msg: e.to_string(),
        }
    }

    /// Encodes text; special tokens written in the text (e.g. `<|im_start|>`) are recognised, no
    /// BOS/EOS is added.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        let enc = self.inner.encode(text, false).map_err(|e| self.err(e))?;
        Ok(enc.get_ids().to_vec())
    }

    /// Decodes ids to text, optionally dropping special tokens.
    pub fn decode(&self, ids: &[u32], skip_special: bool) -> Result<String> {
        self.inner
            .decode(ids, skip_special)
            .map_err(|e| self.err(e))
    }

    /// Id of a token string (including added/special tokens).
    pub fn token_id(&self, token: &str) -> Option<u32> {
        self.inner.token_to_id(token)
    }

    /// Vocabulary size including added tokens.
    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    /// Ids of `<|endoftext|>` and `<|im_end|>` that this tokenizer has (Qwen3's EOS set).
    pub fn qwen3_eos_ids(&self) -> Vec<u32> {
        ["<|endoftext|>", "<|im_end|>"]
            .iter()
            .filter_map(|t| self.token_id(t))
            .collect()
    }

    /// A streaming decoder over this tokenizer.
    pub fn stream(&self, skip_special: bool) -> StreamDecoder<'_> {
        StreamDecoder {
            tok: self,
            skip_special,
            ids: Vec::with_capacity(64),
            prefix: 0,
            read: 0,
        }
    }

    /// The underlying `tokenizers` object.
    pub fn inner(&self) -> &tokenizers::Tokenizer {
        &self.inner
    }
}

/// Incremental detokenizer: feed ids one at a time, get back only text that is complete UTF-8
/// and will not change when later ids arrive (a token holding half of a multi-byte character
/// yields nothing until the character is complete).
pub struct StreamDecoder<'t> {
    tok: &'t Tokenizer,
    skip_special: bool,
    ids: Vec<u32>,
    prefix: usize,
    read: usize,
}

impl StreamDecoder<'_> {
    /// Adds one id; returns the newly completed text, if any.
    pub fn push(&mut self, id: u32) -> Result<Option<String>> {
        self.ids.push(id);
        // Decoding a window that starts a few tokens back keeps context-dependent decoders
        // (leading-space handling) right.
        let before = self
            .tok
            .decode(&self.ids[self.prefix..self.read], self.skip_special)?;
        let now = self
            .tok
            .decode(&self.ids[self.prefix..], self.skip_special)?;
        if now.len() > before.len() && !now.ends_with('\u{FFFD}') {
            let text = match now.get(before.len()..) {
                Some(t) if now.starts_with(&before) => t.to_string(),
                _ => now.clone(),
            };
            self.prefix = self.read;
            self.read = self.ids.len();
            // Keep the buffer short: drop ids no window needs any more.
            if self.prefix > 0 {
                self.ids.drain(..self.prefix);
                self.read -= self.prefix;
                self.prefix = 0;
            }
            return Ok(Some(text));
        }
        Ok(None)
    }

    /// Text still held back (an incomplete character at the end of generation), decoded lossily.
    pub fn flush(&mut self) -> Result<Option<String>> {
        let before = self
            .tok
            .decode(&self.ids[self.prefix..self.read], self.skip_special)?;
        let now = self
            .tok
            .decode(&self.ids[self.prefix..], self.skip_special)?;
        self.ids.clear();
        self.prefix = 0;
        self.read = 0;
        Ok(now
            .get(before.len()..)
            .filter(|t| !t.is_empty())
            .map(str::to_string))
    }
}

/// Qwen3 chat prompt for one user message. With `think == false` (default in this project) the
/// empty think block `<think>\n\n</think>\n\n` is appended, which disables thinking.
pub fn qwen3_prompt(user: &str, think: bool) -> String {
    let mut s = format!("<|im_start|>user\n{user}<|im_end|>\n");
    push_generation_prompt(&mut s, think);
    s
}

fn push_generation_prompt(s: &mut String, think: bool) {
    s.push_str("<|im_start|>assistant\n");
    if !think {
        s.push_str("<think>\n\n</think>\n\n");
    }
}

/// Who said a chat message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// System prompt.
    System,
    /// The user.
    User,
    /// The model.
    Assistant,
}

impl Role {
    fn tag(self) -> &'static str {
        match self {
            Role::System => "system",
            Role::User => "user",
            Role::Assistant => "assistant",
        }
    }
}

/// Multi-turn chat history rendered with the Qwen3 template.
///
/// Previous assistant turns are rendered without their think block (as Qwen3's template does),
/// so the rendered history may differ from the tokens the model generated; the scheduler's
/// prefix reuse recomputes from the first difference.
#[derive(Clone, Debug, Default)]
pub struct ChatSession {
    messages: Vec<(Role, String)>,
    /// Leave thinking enabled (omit the empty think block).
    pub think: bool,
}

impl ChatSession {
    /// An empty conversation (thinking disabled).
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the system prompt (replaces an existing one).
    pub fn set_system(&mut self, text: &str) {
        self.messages.retain(|(r, _)| *r != Role::System);
        self.messages.insert(0, (Role::System, text.to_string()));
    }

    /// Appends a user message.
    pub fn push_user(&mut self, text: &str) {
        self.messages.push((Role::User, text.to_string()));
    }

    /// Appends the model's reply (a leading `<think>...</think>` block and special end tokens are
    /// stripped).
    pub fn push_assistant(&mut self, text: &str) {
        let mut t = text;
        if let Some(end) = t.find("</think>") {
            t = &t[end + "</think>".len()..];
        }
        let t = t
            .trim_start_matches('\n')
            .trim_end_matches("<|im_end|>")
            .trim_end_matches("<|endoftext|>")
            .trim_end();
        self.messages.push((Role::Assistant, t.to_string()));
    }

    /// The messages so far.
    pub fn messages(&self) -> &[(Role, String)] {
        &self.messages
    }

    /// Clears the conversation.
    pub fn clear(&mut self) {
        self.messages.clear();
    }

    /// The whole conversation followed by the assistant generation prompt.
    pub fn render(&self) -> String {
        let mut s = String::new();
        for (role, text) in &self.messages {
            s.push_str("<|im_start|>");
            s.push_str(role.tag());
            s.push('\n');
            s.push_str(text);
            s.push_str("<|im_end|>\n");
        }
        push_generation_prompt(&mut s, self.think);
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load() -> Option<Tokenizer> {
        let p =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/assets/qwen3/tokenizer.json");
        if !p.exists() {
            eprintln!("note: {} absent, skipping tokenizer test", p.display());
            return None;
        }
        Some(Tokenizer::from_file(&p).unwrap())
    }

    #[test]
    fn template_strings() {
        assert_eq!(
            qwen3_prompt("hi", false),
            "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n"
        );
        assert_eq!(
            qwen3_prompt("hi", true),
            "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"
        );
        let mut c = ChatSession::new();
        c.push_user("a");
        assert_eq!(c.render(), qwen3_prompt("a", false));
        c.push_assistant("<think>\n\n</think>\n\nB<|im_end|>");
        c.push_user("c");
        assert_eq!(
            c.render(),
            "<|im_start|>user\na<|im_end|>\n<|im_start|>assistant\nB<|im_end|>\n\
             <|im_start|>user\nc<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n"
        );
        c.set_system("S");
        assert!(c
            .render()
            .starts_with("<|im_start|>system\nS<|im_end|>\n<|im_start|>user\na"));
    }

    #[test]
    fn qwen3_round_trip_and_specials() {
        let Some(t) = load() else { return };
        let text = qwen3_prompt(
            "Give me a short introduction to large language models. 你好 🙂",
            false,
        );
        let ids = t.encode(&text).unwrap();
        let im_start = t.token_id("<|im_start|>").unwrap();
        let im_end = t.token_id("<|im_end|>").unwrap();
        assert_eq!(ids[0], im_start);
        assert_eq!(ids.iter().filter(|&&i| i == im_start).count(), 2);
        assert_eq!(ids.iter().filter(|&&i| i == im_end).count(), 1);
        assert_eq!(t.decode(&ids, false).unwrap(), text);
        assert_eq!(t.qwen3_eos_ids(), vec![151643, 151645]);
        assert!(t.vocab_size() > 150_000);
    }

    #[test]
    fn streaming_emits_only_complete_utf8() {
        let Some(t) = load() else { return };
        let text = "Hello 世界! 🙂 𠀋𡈽 🫠🦩 naïve café — ok";
        let ids = t.encode(text).unwrap();
        let mut s = t.stream(false);
        let mut out = String::new();
        let mut pieces = 0;
        for &id in &ids {
            if let Some(p) = s.push(id).unwrap() {
                assert!(!p.contains('\u{FFFD}'), "partial char emitted: {p:?}");
                out.push_str(&p);
                pieces += 1;
            }
        }
        if let Some(p) = s.flush().unwrap() {
            out.push_str(&p);
        }
        assert_eq!(out, text);
        // Rare characters are split over several byte-level tokens, whose lone decodes are
        // incomplete UTF-8: the test exercises the hold-back path, so fewer pieces than ids.
        let partial = ids
            .iter()
            .filter(|&&i| t.decode(&[i], false).unwrap().contains('\u{FFFD}'))
            .count();
        assert!(partial > 0, "test text has no split character");
        assert!(pieces < ids.len(), "{pieces} pieces for {} ids", ids.len());
    }

    #[test]
    fn missing_file_is_error() {
        let e = Tokenizer::from_file("/nonexistent/tokenizer.json").unwrap_err();
        assert!(e.to_string().contains("/nonexistent/tokenizer.json"));
        assert!(Tokenizer::from_bytes(b"{not json").is_err());
    }
}
