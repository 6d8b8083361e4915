//! Typed services across two linked managers: a server found by its
//! service (and an actor that only asks it not found), typed asks here and
//! from the other process, a stray reply refused before it reaches the
//! server.

use std::time::Duration;

use actor::{Actor, ActorSender, Context, Handler, SendError, service};
use manager::{Manager, ManagerConfig};
use msg_header::{BoxMsg, MsgType};
use msg_serde_macro::msg_serde_macro;
use protocol_set::{ProtocolSet, protocol_set};

msg_serde_macro! { struct Add("services::Add") -> Sum { a: i64, b: i64 } }
msg_serde_macro! { struct Sum("services::Sum") { sum: i64 } }
service! { Calc = "services_calc" [Add] }

struct Adder;

impl Handler<Add> for Adder {
    fn handle(&mut self, _: &mut Context<'_>, add: Add) -> Sum {
        Sum::new(add.a + add.b)
    }
}

protocol_set! {
    /// An actor that asks adders: it takes their sums, and serves nothing.
    fn asker_set = "services::Asker" [uses <Calc as actor::Service>::protocol()]
}

/// Asks an adder when told to, and keeps the sums it is answered with.
struct Asker(std::sync::mpsc::Sender<i64>);

impl Actor for Asker {
    fn protocol_set(&self) -> &'static ProtocolSet {
        asker_set()
    }

    fn handle(&mut self, ctx: &mut Context<'_>, msg: BoxMsg) {
        match msg.downcast::<Sum>() {
            Ok(sum) => {
                let _ = self.0.send(sum.sum);
            }
            Err(other) => ctx.unhandled(other.into_inner()),
        }
    }
}

const GUARD: Duration = Duration::from_secs(60);

#[test]
fn lookups_by_service_find_servers_only_here_and_across_a_link() {
    let there = Manager::new(ManagerConfig::default().node_name("calc-there")).unwrap();
    let served = there.serve::<Calc, _>("adder", Adder).unwrap();
    let (sums, got) = std::sync::mpsc::channel();
    let asker = there.add("asker", Asker(sums)).unwrap();
    // Only the server, by service and by protocol.
    assert_eq!(there.find_all::<Calc>(), vec![served.clone()]);
    let id = <Calc as actor::Service>::protocol().id();
    assert_eq!(there.find_by_protocol(id).iter().map(ActorSender::name).collect::<Vec<_>>(), ["adder"]);
    assert!(there.find::<Calc>("asker").is_none(), "an asker is no server");

    // Sent with the asker as its reply address: the sum comes back to it.
    served.untyped().send_from(Add::new(1, 2), &asker).unwrap();
    assert_eq!(got.recv_timeout(GUARD).unwrap(), 3);

    // A stray reply is refused at the send: the server does not take it.
    assert!(matches!(served.untyped().try_send(Sum::new(1)), Err(SendError::NotAccepted(_))));

    // From another process's manager, linked: the same typed reference.
    let here = Manager::new(ManagerConfig::default().node_name("calc-here")).unwrap();
    let addr = there.listen(&"tcp://127.0.0.1:0".parse().unwrap()).unwrap();
    here.connect(&addr).unwrap();
    let remote = here.find::<Calc>("adder@calc-there").expect("found by name");
    assert!(remote.untyped().is_remote());
    assert_eq!(remote.ask(Add::new(40, 2), GUARD).unwrap().sum, 42);
    assert_eq!(here.find_all::<Calc>(), vec![remote.clone()], "the asker there is no server");
    assert!(!remote.untyped().accepts(Sum::msg_id()), "nor is the adder sent sums");
    assert!(matches!(remote.untyped().try_send(Sum::new(1)), Err(SendError::NotAccepted(_))));
}
