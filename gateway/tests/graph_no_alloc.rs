//! "No allocation per flow in steady state" (issue 16), checked with a counting allocator: once
//! the endpoint table is full and evicting, an edge through `EndpointTable::observe`, and an
//! edge through `GraphPipeline::ingest_records` up to the batch's scoring, allocate nothing.
//! Scoring (tract) and alerts allocate per batch and per alert, not per edge; they are outside
//! the counted spans.
//!
//! Only the test's own thread is counted (firmware/tests/support/counting_alloc.rs).

#[path = "../../firmware/tests/support/counting_alloc.rs"]
mod counting_alloc;

use std::sync::Arc;
use std::time::Duration;

use counting_alloc::allocations_in;
use netwarden::metrics::Metrics;
use netwarden::models::graph_scorer::GraphBundle;
use netwarden::pipeline::graph::{column_names, synth, EndpointTable, GraphPipeline, INPUT_WIDTH};
use netwarden::records::FlowOrigin;

#[test]
fn a_full_table_and_the_ingest_path_allocate_nothing_per_edge() {
    // The table alone: 1,000 endpoints, filled and evicting before the counted span.
    let mut table = EndpointTable::new(1_000);
    let mut row = Box::new([0f32; INPUT_WIDTH]);
    let warm = synth::edges(20_000, 0x9e37_79b9_7f4a_7c15);
    for r in &warm {
        table.observe(r, &mut row);
    }
    let evicted_before = table.stats().evictions;
    assert!(evicted_before > 0, "the warm-up should fill the table");
    let counted = synth::edges(20_000, 0x2545_f491_4f6c_dd1d);
    let (n, ()) = allocations_in(|| {
        for r in &counted {
            table.observe(r, &mut row);
        }
    });
    assert!(
        table.stats().evictions > evicted_before,
        "the counted edges should evict too"
    );
    assert_eq!(
        n, 0,
        "20,000 edges through a full table allocated {n} times"
    );

    // The pipeline's per-edge path: table, row gathered into the batch, the edge queued.
    // Scoring runs when the batch of 512 fills; the counted span stops one edge short of it.
    let bundle = GraphBundle::builtin(&column_names(), 512).expect("built-in graph bundle");
    let mut p = GraphPipeline::new(
        bundle,
        1_000,
        "site",
        "device",
        Duration::from_secs(60),
        Arc::new(Metrics::default()),
    )
    .with_clock(|| 0);
    let origin = FlowOrigin::Meter("capture:lan0".into());
    let mut alerts = 0usize;
    for chunk in warm.chunks(512) {
        p.ingest_records(&origin, chunk, &mut |_| alerts += 1);
    }
    p.flush(&mut |_| alerts += 1);
    let runs = p.runs;
    let (n, ()) = allocations_in(|| {
        p.ingest_records(&origin, &counted[..511], &mut |_| alerts += 1);
    });
    assert_eq!(p.runs, runs, "the counted edges should not fill a batch");
    assert_eq!(
        n, 0,
        "511 edges through the ingest path allocated {n} times"
    );
    // The control: the counter does see the scoring run's allocations.
    let (scored, ()) = allocations_in(|| p.flush(&mut |_| alerts += 1));
    assert_eq!(p.runs, runs + 1);
    assert!(scored > 0, "tract's run should show as allocations");
}
