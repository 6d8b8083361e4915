use msg_local_macro::msg_local_macro;

msg_local_macro! {
    pub struct NoName {
        pub a: u32,
    }
}

fn main() {}
