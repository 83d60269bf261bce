#[derive(serde::Serialize, serde::Deserialize, melange::Message)]
#[melange(python = "OrderCreated")]
struct OrderCreated {
    order_id: u64,
}

fn main() {}
