//! When digests fire: the schedule is parsed once, with the routing file, and kept in
//! [`crate::config::DigestConfig`]; it lives in `config` (see `ARCHITECTURE.md`).

pub(crate) use crate::config::schedule::DigestSchedule;
