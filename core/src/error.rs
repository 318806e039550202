//! Errors for things the caller of the core controls.

/// A call configuration the core cannot run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// No OpenAI API key.
    #[error("the OpenAI API key is empty")]
    MissingApiKey,
    /// The base URL is not `http(s)://…`.
    #[error("the OpenAI base URL {0:?} is not an http or https URL")]
    BadBaseUrl(String),
    /// No model name.
    #[error("the OpenAI model name is empty")]
    EmptyModel,
    /// Two tools share a name (or a tool takes a built-in's name).
    #[error("two tools are named {0:?}")]
    DuplicateTool(String),
    /// A tool name OpenAI would refuse.
    #[error("tool name {0:?} must be 1-64 characters of a-z, A-Z, 0-9, _ or -")]
    BadToolName(String),
}
