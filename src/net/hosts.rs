//! The hosts of a state, some of them made only when first looked at.
//!
//! A cluster of 150,000 pods has 150,000 pod namespaces, and a trace visits two or three. A
//! host can therefore be added as a recipe: its name and role, known at once, and a function
//! that makes the rest on first use (and keeps it). Reading a host, by index or by iterating,
//! makes it; its name and role can be read without.

use std::fmt;
use std::ops::{Index, IndexMut};
use std::sync::{Arc, OnceLock};

use serde::Serialize;

use super::{Host, Role};

/// Makes a host from its name and role.
pub type MakeHost = Arc<dyn Fn(String, Role) -> Host + Send + Sync>;

#[derive(Clone, Default)]
pub struct Hosts {
    slots: Vec<Slot>,
}

#[derive(Clone)]
enum Slot {
    Made(Box<Host>),
    Deferred {
        name: String,
        role: Role,
        made: OnceLock<Box<Host>>,
        make: MakeHost,
    },
}

impl Slot {
    fn host(&self) -> &Host {
        match self {
            Slot::Made(h) => h,
            Slot::Deferred { name, role, made, make } => made.get_or_init(|| {
                let host = make(name.clone(), role.clone());
                debug_assert!(
                    host.name == *name && host.role == *role,
                    "a host is made with the name and role it was announced with"
                );
                Box::new(host)
            }),
        }
    }

    fn host_mut(&mut self) -> &mut Host {
        if let Slot::Deferred { .. } = self {
            let made = Box::new(self.host().clone());
            *self = Slot::Made(made);
        }
        match self {
            Slot::Made(h) => h,
            Slot::Deferred { .. } => unreachable!("made above"),
        }
    }
}

impl Hosts {
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    pub fn reserve_exact(&mut self, more: usize) {
        self.slots.reserve_exact(more);
    }

    pub fn push(&mut self, host: Host) {
        self.slots.push(Slot::Made(Box::new(host)));
    }

    /// Adds a host that `make` makes the first time it is read. It must be a namespace on no
    /// shared segment ([`super::Link::Segment`]): the ARP index is made without it.
    pub fn push_deferred(&mut self, name: String, role: Role, make: MakeHost) {
        self.slots.push(Slot::Deferred {
            name,
            role,
            made: OnceLock::new(),
            make,
        });
    }

    pub fn get(&self, i: usize) -> Option<&Host> {
        self.slots.get(i).map(Slot::host)
    }

    /// The host's name, without making it.
    pub fn name(&self, i: usize) -> &str {
        match &self.slots[i] {
            Slot::Made(h) => &h.name,
            Slot::Deferred { name, .. } => name,
        }
    }

    /// The host's role, without making it.
    pub fn role(&self, i: usize) -> &Role {
        match &self.slots[i] {
            Slot::Made(h) => &h.role,
            Slot::Deferred { role, .. } => role,
        }
    }

    /// The hosts made so far, with their indices: every host added by [`Hosts::push`], and the
    /// deferred ones already read.
    pub fn made(&self) -> impl Iterator<Item = (usize, &Host)> {
        self.slots.iter().enumerate().filter_map(|(i, s)| match s {
            Slot::Made(h) => Some((i, &**h)),
            Slot::Deferred { made, .. } => made.get().map(|h| (i, &**h)),
        })
    }

    /// Every host, each made if it was not yet.
    pub fn iter(&self) -> impl Iterator<Item = &Host> {
        self.slots.iter().map(Slot::host)
    }
}

impl Index<usize> for Hosts {
    type Output = Host;
    fn index(&self, i: usize) -> &Host {
        self.slots[i].host()
    }
}

impl IndexMut<usize> for Hosts {
    fn index_mut(&mut self, i: usize) -> &mut Host {
        self.slots[i].host_mut()
    }
}

impl<'a> IntoIterator for &'a Hosts {
    type Item = &'a Host;
    type IntoIter = Box<dyn Iterator<Item = &'a Host> + 'a>;
    fn into_iter(self) -> Self::IntoIter {
        Box::new(self.iter())
    }
}

impl From<Vec<Host>> for Hosts {
    fn from(hosts: Vec<Host>) -> Hosts {
        Hosts {
            slots: hosts.into_iter().map(|h| Slot::Made(Box::new(h))).collect(),
        }
    }
}

impl fmt::Debug for Hosts {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl Serialize for Hosts {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.iter())
    }
}
