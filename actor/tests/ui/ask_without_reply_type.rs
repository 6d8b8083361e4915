use std::time::Duration;

use actor::ActorSender;
use msg1::Msg1;

fn main() {
    let (to, _rx) = ActorSender::inbox("to");
    // Msg1 declares no reply type: what would `ask` return?
    let _ = to.ask(Msg1::new(1, Default::default()), Duration::from_secs(1));
}
