//! [`Slots`]: the overlays a node runs, as one value. Every state the
//! contract names holds exactly the instances it needs, so an impossible
//! combination (a draining overlay with no current one, a shadow and an
//! old overlay at once) cannot be written; the published
//! [`ExecState`] is derived from it.

use std::time::Duration;

use crate::executor::instance::Instance;
use crate::executor::status::ExecState;

/// The running overlays.
#[derive(Debug, Default)]
pub enum Slots {
    /// Nothing built yet.
    #[default]
    Starting,
    Steady {
        current: Instance,
    },
    /// A shadow overlay is being prepared beside the current one.
    Preparing {
        current: Instance,
        shadow: Instance,
    },
    /// After a cut-over: the old overlay drains beside the new current one,
    /// since `since`; it last carried an application payload at
    /// `last_payload`.
    Draining {
        current: Instance,
        old: Instance,
        since: Duration,
        last_payload: Duration,
    },
}

impl Slots {
    /// The state as the contract names it.
    pub fn state(&self) -> ExecState {
        match self {
            Slots::Starting => ExecState::Starting,
            Slots::Steady { current } => ExecState::Steady {
                current: current.id,
            },
            Slots::Preparing { current, shadow } => ExecState::Preparing {
                current: current.id,
                shadow: shadow.id,
            },
            Slots::Draining { current, old, .. } => ExecState::Draining {
                current: current.id,
                old: old.id,
            },
        }
    }

    pub fn current(&self) -> Option<&Instance> {
        match self {
            Slots::Starting => None,
            Slots::Steady { current }
            | Slots::Preparing { current, .. }
            | Slots::Draining { current, .. } => Some(current),
        }
    }

    /// The shadow or the draining overlay.
    pub fn other(&self) -> Option<&Instance> {
        match self {
            Slots::Starting | Slots::Steady { .. } => None,
            Slots::Preparing { shadow: o, .. } | Slots::Draining { old: o, .. } => Some(o),
        }
    }

    /// The shadow overlay, if one is being prepared.
    pub fn shadow(&self) -> Option<&Instance> {
        match self {
            Slots::Preparing { shadow, .. } => Some(shadow),
            _ => None,
        }
    }

    /// Both running overlays, current first.
    pub fn iter(&self) -> impl Iterator<Item = &Instance> {
        self.current().into_iter().chain(self.other())
    }

    /// The ids of the running overlays, current first.
    pub fn ids(&self) -> Vec<u64> {
        self.iter().map(|i| i.id).collect()
    }

    pub fn get(&self, id: u64) -> Option<&Instance> {
        self.iter().find(|i| i.id == id)
    }

    pub fn get_mut(&mut self, id: u64) -> Option<&mut Instance> {
        match self {
            Slots::Starting => None,
            Slots::Steady { current } => Some(current).filter(|i| i.id == id),
            Slots::Preparing { current, shadow: o }
            | Slots::Draining {
                current, old: o, ..
            } => {
                if current.id == id {
                    Some(current)
                } else {
                    Some(o).filter(|i| i.id == id)
                }
            }
        }
    }

    /// Replaces everything with `current` alone; returns what ran before
    /// (to be torn down).
    pub fn replace_all(&mut self, current: Instance) -> Vec<Instance> {
        match std::mem::replace(self, Slots::Steady { current }) {
            Slots::Starting => Vec::new(),
            Slots::Steady { current } => vec![current],
            Slots::Preparing { current, shadow: o }
            | Slots::Draining {
                current, old: o, ..
            } => vec![o, current],
        }
    }

    /// Drops the second overlay (shadow or old); returns it.
    pub fn drop_other(&mut self) -> Option<Instance> {
        match std::mem::take(self) {
            Slots::Preparing { current, shadow: o }
            | Slots::Draining {
                current, old: o, ..
            } => {
                *self = Slots::Steady { current };
                Some(o)
            }
            s => {
                *self = s;
                None
            }
        }
    }

    /// Starts `shadow` beside the current overlay (the second slot must be
    /// free); gives it back (`Some`) if it cannot.
    pub fn start_shadow(&mut self, shadow: Instance) -> Option<Instance> {
        match std::mem::take(self) {
            Slots::Steady { current } => {
                *self = Slots::Preparing { current, shadow };
                None
            }
            s => {
                *self = s;
                Some(shadow)
            }
        }
    }

    /// The cut-over: the shadow `id` becomes current and the current one
    /// drains. False (nothing changed) unless `id` is being prepared.
    pub fn cut_over(&mut self, id: u64, now: Duration) -> bool {
        match std::mem::take(self) {
            Slots::Preparing { current, shadow } if shadow.id == id => {
                *self = Slots::Draining {
                    current: shadow,
                    old: current,
                    since: now,
                    last_payload: now,
                };
                true
            }
            s => {
                *self = s;
                false
            }
        }
    }

    /// The old overlay carried an application payload at `now`.
    pub fn old_carried(&mut self, instance: u64, now: Duration) {
        if let Slots::Draining {
            old, last_payload, ..
        } = self
        {
            if old.id == instance {
                *last_payload = now;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{OverlayConfig, Topology};

    fn inst(id: u64) -> Instance {
        Instance::new(
            1,
            id,
            Topology::FullMesh,
            OverlayConfig::default_for(Topology::FullMesh),
            &[1],
        )
        .expect("full mesh builds")
    }

    #[test]
    fn a_switch_walks_the_states_the_contract_names() {
        let mut s = Slots::Starting;
        assert_eq!(s.state(), ExecState::Starting);
        assert!(s.start_shadow(inst(1)).is_some(), "no current overlay");
        assert!(s.replace_all(inst(0)).is_empty());
        assert_eq!(s.state(), ExecState::Steady { current: 0 });
        assert!(!s.cut_over(1, Duration::ZERO), "nothing prepared");
        assert!(s.start_shadow(inst(1)).is_none());
        assert_eq!(
            s.state(),
            ExecState::Preparing {
                current: 0,
                shadow: 1
            }
        );
        assert!(
            s.start_shadow(inst(2)).is_some(),
            "the second slot is taken"
        );
        assert!(!s.cut_over(2, Duration::ZERO), "not the shadow");
        assert!(s.cut_over(1, Duration::from_secs(1)));
        assert_eq!(s.state(), ExecState::Draining { current: 1, old: 0 });
        assert_eq!(s.ids(), vec![1, 0]);
        assert_eq!(s.drop_other().map(|i| i.id), Some(0));
        assert_eq!(s.state(), ExecState::Steady { current: 1 });
        assert!(s.drop_other().is_none());
    }
}
