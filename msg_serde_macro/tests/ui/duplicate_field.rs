use msg_serde_macro::msg_serde_macro;

msg_serde_macro! {
    pub struct Dup("x::Dup") {
        pub a: u32,
        pub a: u64,
    }
}

fn main() {}
