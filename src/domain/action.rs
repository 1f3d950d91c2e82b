//! What a person can do to an incident from outside (the API, the web page, a signed link, a
//! Slack button, PagerDuty). Every entry point turns its request into one [`Action`] and hands
//! it to the incident service, so each action is written once.

/// One change a person asks for. A root-cause note given with an acknowledgement or resolution
/// is written in the same transaction, before it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Acknowledge {
        root_cause: Option<String>,
    },
    Resolve {
        root_cause: Option<String>,
    },
    /// Sets the root-cause note and nothing else.
    Note {
        root_cause: String,
    },
}

impl Action {
    pub const ACKNOWLEDGE: Action = Action::Acknowledge { root_cause: None };
    pub const RESOLVE: Action = Action::Resolve { root_cause: None };

    /// The note to write first, if any (blank notes are none).
    pub fn root_cause(&self) -> Option<&str> {
        match self {
            Action::Acknowledge { root_cause } | Action::Resolve { root_cause } => {
                root_cause.as_deref()
            }
            Action::Note { root_cause } => Some(root_cause.as_str()),
        }
        .filter(|n| !n.trim().is_empty())
    }
}
