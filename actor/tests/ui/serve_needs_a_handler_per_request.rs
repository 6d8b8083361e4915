use actor::{Context, Handler, Served, service};
use msg_serde_macro::msg_serde_macro;

msg_serde_macro! { pub struct Add("ui::Add") -> Sum { a: i64, b: i64 } }
msg_serde_macro! { pub struct Mul("ui::Mul") -> Product { a: i64, b: i64 } }
msg_serde_macro! { pub struct Sum("ui::Sum") { sum: i64 } }
msg_serde_macro! { pub struct Product("ui::Product") { product: i64 } }
service! { pub Calc = "ui_calc" [Add, Mul] }

/// Adds, but has no arm for `Mul`.
struct Adder;

impl Handler<Add> for Adder {
    fn handle(&mut self, _: &mut Context<'_>, add: Add) -> Sum {
        Sum::new(add.a + add.b)
    }
}

fn main() {
    let _ = Served::<Calc, Adder>::new(Adder);
}
