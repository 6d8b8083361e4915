use std::time::Duration;

use actor::{Ref, service};
use echo_req::EchoReq;
use msg_serde_macro::msg_serde_macro;

msg_serde_macro! { pub struct Add("ui::Add") -> Sum { a: i64, b: i64 } }
msg_serde_macro! { pub struct Sum("ui::Sum") { sum: i64 } }
service! { pub Calc = "ui_calc" [Add] }

fn ask(calc: &Ref<Calc>) {
    // An EchoReq is not one of Calc's requests.
    let _ = calc.ask(EchoReq::new(1, 0), Duration::from_secs(1));
}

fn main() {}
