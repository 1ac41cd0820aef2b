// Placeholder until the allocator benches land (issue 6).
fn main() {}
