use msg_serde_macro::msg_serde_macro;

msg_serde_macro! {
    pub struct WithSender("x::WithSender") {
        pub tx: crossbeam_channel::Sender<u32>,
    }
}

fn main() {}
