//! Bundling: messages already due for one destination go out as one message listing them,
//! instead of one message each (Slack allows one message per second per channel, so a storm of
//! 150 incidents would otherwise trickle out for two and a half minutes).
//!
//! Nothing waits for company: the worker bundles only rows that are due when it claims, so the
//! first message of a quiet channel goes out at once, alone, as the normal incident card. Rows
//! that wait for the channel's rate limit are given back until the token is there, and whatever
//! is due then shares the next message.
//!
//! In Slack bot mode the bundle is one card, updated in place (`chat.update`) with the newcomers
//! while it is recent ([`GROW_FOR_MS`]) and not full. Its members have no card of their own, so
//! an acknowledgement or resolution of a member re-renders the bundle with every member's state
//! and replies in the bundle's thread ([`Bundler::report_member`]); replacing the bundle with the
//! member's own card would wipe the list. Webhooks and email cannot edit what they sent: each
//! bundle is a new message, and a member's later changes go out as today's short messages.

use super::{Notification, NotificationKind, RemoteState, SendFuture};
use crate::store::deliveries::bundles::Card;

/// Most incidents one bundled message lists. Slack allows 50 blocks: a header, a summary line,
/// one section per member and an "and K more" line fit; each member's section is far below the
/// 3,000 characters of a section and the whole below the 40,000 of a message.
pub(crate) const MAX_MEMBERS: usize = 40;

/// A bot-mode bundle card takes newcomers for this long after it was posted; later ones get a
/// new message (which notifies the channel, where an edit does not).
pub(crate) const GROW_FOR_MS: i64 = 60_000;

/// One bundled message: its members in list order, as they are now.
#[derive(Debug, Clone, Copy)]
pub struct Bundle<'a> {
    pub members: &'a [Notification],
    /// Rows due for the destination that this message does not list: they follow in the next.
    pub more: usize,
    /// The card to update instead of posting (bot mode, a recent card with room).
    pub card: Option<&'a Card>,
}

/// Whether `n` may share a message: it announces an incident to the channel (rather than
/// change what the channel was told; acknowledgements and resolutions go on their own, after
/// it), and is not a storm's, whose card stands for many and keeps its count current.
pub(crate) fn may_join(n: &Notification) -> bool {
    let announces = matches!(
        n.kind,
        NotificationKind::Opened
            | NotificationKind::Escalation
            | NotificationKind::SeverityRaised
            | NotificationKind::Retriggered
    );
    announces && n.storm.is_none()
}

/// A channel that can send several incidents as one message.
pub trait Bundler: Send + Sync {
    /// True when a sent bundle can be edited later (Slack bot mode): it is then stored, grows
    /// in place and re-renders its members' states.
    fn grows_in_place(&self) -> bool {
        false
    }

    /// Whether this row's message may be listed in a bundle.
    fn joins(&self, n: &Notification, remote: &RemoteState) -> bool;

    /// Posts the bundle, or updates `bundle.card` with it. In bot mode `Delivered` carries the
    /// card's `RemoteRef` (a new one when the old card was gone).
    fn send_bundle<'a>(&'a self, bundle: Bundle<'a>) -> SendFuture<'a>;

    /// Tells the channel of `change` (an acknowledgement or resolution) of a member of
    /// `bundle.card`: the card re-rendered with every member as it is now, and a thread reply.
    fn report_member<'a>(&'a self, bundle: Bundle<'a>, change: &'a Notification) -> SendFuture<'a>;
}
