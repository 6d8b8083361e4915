//! Which accepted links a node lets in: the caps on links in all, from
//! one user and from one node ([`NodeLimits`]), so that one process
//! cannot take every link. Free of I/O: the driver says who connected
//! (the [`PeerUser`] its transport found), the link core says which node
//! it is once its handshake is done.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

use connection::LimitKind;
use msg_header::NodeId;

use crate::NodeLimits;
use crate::sync::lock;

/// Who is at the other end of an accepted connection, as its transport
/// can tell: a user of this host, or a remote address.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum PeerUser {
    /// A user of this host (a Unix socket's credentials, or the owner of a
    /// loopback TCP connection's other end).
    Uid(u32),
    /// Another host.
    Ip(IpAddr),
    /// Not known (one bucket for all).
    Unknown,
}

/// The accepted links open now, by user and by node.
#[derive(Default)]
struct Counts {
    links: usize,
    users: HashMap<PeerUser, usize>,
    nodes: HashMap<NodeId, usize>,
}

/// The node's admission of accepted links.
pub(crate) struct Admission {
    max_links: usize,
    max_per_user: usize,
    max_per_node: usize,
    counts: Mutex<Counts>,
}

/// An accepted link counted against the caps: given back with
/// [`Admission::release`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Admitted {
    user: PeerUser,
    /// Its node, once its handshake named it and it was counted.
    node: Option<NodeId>,
}

impl Admission {
    pub(crate) fn new(limits: &NodeLimits) -> Self {
        Self {
            max_links: limits.max_links,
            max_per_user: limits.max_links_per_user.min(limits.max_links),
            max_per_node: limits.max_links_per_node,
            counts: Mutex::default(),
        }
    }

    /// Counts a connection accepted from `user`, or says which cap refuses it.
    pub(crate) fn accept(&self, user: PeerUser) -> Result<Admitted, LimitKind> {
        let mut c = lock(&self.counts);
        if c.links >= self.max_links {
            return Err(LimitKind::Links);
        }
        let of_user = c.users.get(&user).copied().unwrap_or(0);
        if of_user >= self.max_per_user {
            return Err(LimitKind::LinksPerUser);
        }
        c.links += 1;
        c.users.insert(user, of_user + 1);
        Ok(Admitted { user, node: None })
    }

    /// The handshake of an admitted link named its node: counts it, or
    /// says that the node has too many links.
    pub(crate) fn named(&self, admitted: &mut Admitted, node: NodeId) -> Result<(), LimitKind> {
        let mut c = lock(&self.counts);
        let of_node = c.nodes.get(&node).copied().unwrap_or(0);
        if of_node >= self.max_per_node {
            return Err(LimitKind::LinksPerNode);
        }
        c.nodes.insert(node, of_node + 1);
        admitted.node = Some(node);
        Ok(())
    }

    /// An admitted link ended.
    pub(crate) fn release(&self, admitted: Admitted) {
        let mut c = lock(&self.counts);
        c.links = c.links.saturating_sub(1);
        if let Some(n) = c.users.get_mut(&admitted.user) {
            *n -= 1;
            if *n == 0 {
                c.users.remove(&admitted.user);
            }
        }
        if let Some(node) = admitted.node
            && let Some(n) = c.nodes.get_mut(&node)
        {
            *n -= 1;
            if *n == 0 {
                c.nodes.remove(&node);
            }
        }
    }

    /// Accepted links open now.
    #[cfg(test)]
    pub(crate) fn links(&self) -> usize {
        lock(&self.counts).links
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn admission(links: usize, per_user: usize, per_node: usize) -> Admission {
        Admission::new(&NodeLimits {
            max_links: links,
            max_links_per_user: per_user,
            max_links_per_node: per_node,
            ..NodeLimits::default()
        })
    }

    #[test]
    fn one_user_cannot_take_every_link() {
        let a = admission(4, 2, 10);
        let (ann, bob) = (PeerUser::Uid(1000), PeerUser::Uid(1001));
        let first = a.accept(ann).expect("ann's first");
        a.accept(ann).expect("ann's second");
        assert_eq!(a.accept(ann), Err(LimitKind::LinksPerUser));
        a.accept(bob).expect("bob's first");
        a.accept(bob).expect("bob's second");
        assert_eq!(a.accept(PeerUser::Unknown), Err(LimitKind::Links), "the total");
        a.release(first);
        assert!(a.accept(ann).is_ok(), "a slot given back is taken again");
        assert_eq!(a.links(), 4);
    }

    #[test]
    fn one_node_cannot_take_every_link_of_its_user() {
        let a = admission(10, 10, 1);
        let node = NodeId::of_name("n");
        let mut first = a.accept(PeerUser::Uid(1)).expect("admitted");
        a.named(&mut first, node).expect("the node's first");
        let mut second = a.accept(PeerUser::Uid(1)).expect("admitted");
        assert_eq!(a.named(&mut second, node), Err(LimitKind::LinksPerNode));
        a.release(second);
        a.release(first);
        let mut again = a.accept(PeerUser::Uid(1)).expect("admitted");
        assert!(a.named(&mut again, node).is_ok(), "the node's count was given back");
    }
}
