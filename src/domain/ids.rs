//! Row ids as their own types, so that an incident id cannot be passed where an episode (or an
//! event, or a delivery id) is expected. Stored as the same INTEGER as before.

use serde::{Deserialize, Serialize};

macro_rules! id {
    ($(#[$doc:meta])* $ty:ident) => {
        $(#[$doc])*
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
            sqlx::Type,
        )]
        #[serde(transparent)]
        #[sqlx(transparent)]
        pub struct $ty(pub i64);

        impl $ty {
            pub fn get(self) -> i64 {
                self.0
            }

            /// The id after this one (ids are handed out in order; an episode counts reopens).
            #[must_use]
            pub fn next(self) -> Self {
                Self(self.0 + 1)
            }
        }

        impl std::fmt::Display for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                self.0.fmt(f)
            }
        }

        impl std::str::FromStr for $ty {
            type Err = std::num::ParseIntError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                s.parse().map(Self)
            }
        }

        impl From<$ty> for i64 {
            fn from(id: $ty) -> i64 {
                id.0
            }
        }
    };
}

id!(
    /// `incidents.id`.
    IncidentId
);
id!(
    /// `events.id`.
    EventId
);
id!(
    /// `deliveries.id`.
    DeliveryId
);
id!(
    /// One opening of an incident: 1 when first opened, one more on each reopen. Deliveries that
    /// belong to no incident (notices) have episode 0.
    Episode
);

impl Episode {
    /// The episode an incident opens with.
    pub const FIRST: Episode = Episode(1);
    /// What a delivery about no incident (a notice) stores as its episode.
    pub const NONE: Episode = Episode(0);
}
