use msg_local_macro::msg_local_macro;

msg_local_macro! {
    pub struct Dup("x::Dup") {
        pub a: u32,
        pub a: u64,
    }
}

fn main() {}
