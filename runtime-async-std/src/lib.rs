//! The Barbara call driver on async-std (to come; see the issue tracker).
