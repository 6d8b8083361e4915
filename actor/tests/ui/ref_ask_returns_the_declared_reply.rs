use std::time::Duration;

use actor::{Ref, service};
use msg_serde_macro::msg_serde_macro;

msg_serde_macro! { pub struct Add("ui::Add") -> Sum { a: i64, b: i64 } }
msg_serde_macro! { pub struct Sum("ui::Sum") { sum: i64 } }
msg_serde_macro! { pub struct Product("ui::Product") { product: i64 } }
service! { pub Calc = "ui_calc" [Add] }

fn ask(calc: &Ref<Calc>) -> Product {
    // An Add is answered with a Sum, not a Product.
    calc.ask(Add::new(2, 3), Duration::from_secs(1)).unwrap()
}

fn main() {}
