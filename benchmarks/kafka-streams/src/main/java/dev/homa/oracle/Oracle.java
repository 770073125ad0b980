package dev.homa.oracle;

import java.time.Instant;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.function.Consumer;

import org.apache.kafka.common.serialization.Deserializer;
import org.apache.kafka.common.serialization.Serde;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.common.utils.Bytes;
import org.apache.kafka.streams.KeyValue;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.TestInputTopic;
import org.apache.kafka.streams.TestOutputTopic;
import org.apache.kafka.streams.TopologyTestDriver;
import org.apache.kafka.streams.kstream.Consumed;
import org.apache.kafka.streams.kstream.Grouped;
import org.apache.kafka.streams.kstream.KTable;
import org.apache.kafka.streams.kstream.Materialized;
import org.apache.kafka.streams.kstream.Produced;
import org.apache.kafka.streams.kstream.TimeWindows;
import org.apache.kafka.streams.kstream.Windowed;
import org.apache.kafka.streams.kstream.WindowedSerdes;
import org.apache.kafka.streams.kstream.internals.SessionWindow;
import org.apache.kafka.streams.kstream.internals.TimeWindow;
import org.apache.kafka.streams.state.KeyValueIterator;
import org.apache.kafka.streams.state.KeyValueStore;
import org.apache.kafka.streams.state.ValueAndTimestamp;
import org.apache.kafka.streams.test.TestRecord;

/**
 * Kafka Streams' own TopologyTestDriver as an oracle for HOMA's DSL semantics: runs small
 * fixed cases and prints the records of topic "out" (in order) and the final contents of the
 * case's store.
 *
 * <p>Usage: {@code java -cp target/classes:target/lib/* dev.homa.oracle.Oracle [case ...]}
 * (all cases when none are named).
 *
 * <p>Output per case: {@code ## <case>}, then {@code out key=<k|null> value=<v|null> ts=<t>}
 * per output record, then {@code store <name> <key>=<value>@<timestamp>} per store entry
 * ({@code store <name> (empty)} when it has none; no store lines for cases without a store).
 * If the case throws, an {@code exception <class>: <message>} line follows the records
 * produced before the throw.
 */
public final class Oracle {
    private Oracle() {}

    private static final Serde<String> S = Serdes.String();
    private static final Serde<Long> L = Serdes.Long();

    private static final Map<String, Runnable> CASES = new LinkedHashMap<>();

    static {
        CASES.put("stream-count", () -> streamCount(false));
        CASES.put("stream-count-cached", () -> streamCount(true));
        CASES.put("stream-reduce", Oracle::streamReduce);
        CASES.put("stream-aggregate", Oracle::streamAggregate);
        CASES.put("table-count", Oracle::tableCount);
        CASES.put("table-reduce", Oracle::tableReduce);
        CASES.put("table-aggregate", Oracle::tableAggregate);
        CASES.put("table-regroup-same-key", Oracle::tableRegroupSameKey);
        CASES.put("table-source-delete-absent", () -> tableSourceDeleteAbsent(false));
        CASES.put("table-source-delete-absent-cached", () -> tableSourceDeleteAbsent(true));
        CASES.put("table-unmaterialized-filter", Oracle::tableUnmaterializedFilter);
        CASES.put("table-materialized-filter", Oracle::tableMaterializedFilter);
        CASES.put("table-filter-then-count", Oracle::tableFilterThenCount);
        CASES.put("table-mapvalues-unmaterialized", Oracle::tableMapValuesUnmaterialized);
        CASES.put("to-table", Oracle::toTable);
        CASES.put("windowed-serdes", Oracle::windowedSerdes);
        CASES.put("time-windows-for", Oracle::timeWindowsFor);
        CASES.put("tumbling-count", () -> tumblingCount(false));
        CASES.put("tumbling-count-cached", () -> tumblingCount(true));
        CASES.put("hopping-reduce", () -> hoppingReduce(false));
        CASES.put("hopping-reduce-cached", () -> hoppingReduce(true));
        CASES.put("tumbling-aggregate-no-grace", Oracle::tumblingAggregateNoGrace);
        CASES.put("tumbling-emit-final", () -> tumblingEmitFinal(false));
        CASES.put("hopping-emit-final-cached", () -> tumblingEmitFinal(true));
        CASES.put("sliding-count", () -> slidingCount(false));
        CASES.put("sliding-count-cached", () -> slidingCount(true));
        CASES.put("sliding-reduce-no-grace", Oracle::slidingReduceNoGrace);
        CASES.put("session-count", () -> sessionCount(false));
        CASES.put("session-count-cached", () -> sessionCount(true));
        CASES.put("session-aggregate", Oracle::sessionAggregate);
        CASES.put("suppress-window-close", () -> suppressWindowClose(false));
        CASES.put("suppress-window-close-cached", () -> suppressWindowClose(true));
        CASES.put("suppress-time-limit", Oracle::suppressTimeLimit);
        CASES.put("describe-windowed", Oracle::describeWindowed);
        CASES.put("sliding-emit-final", Oracle::slidingEmitFinal);
        CASES.put("session-emit-final", Oracle::sessionEmitFinal);
    }

    /**
     * The windowed cases' input (values are longs): out of order within the grace, late
     * for a closed window, a null key and a null value.
     */
    static final String WINDOW_INPUT = "a=1@1000 b=2@2000 a=3@11000 a=4@9000 a=5@16000 b=6@4000"
            + " a=7@26000 a=8@14000 a=9@21500 null=10@27000 a=null@27500 b=11@40000 a=12@24999";

    /** {@link #WINDOW_INPUT} without its null value, for reduce and aggregate. */
    static final String WINDOW_VALUES = WINDOW_INPUT.replace(" a=null@27500", "");

    /** The session cases' input: sessions that one record bridges, late records. */
    static final String SESSION_INPUT = "a=1@1000 a=2@12000 b=3@2000 a=3@7000 a=4@4000"
            + " b=5@30000 a=6@20000 a=7@17500 a=8@5000 null=9@31000 a=null@31500 b=10@60000 a=11@40000";

    /** {@link #SESSION_INPUT} without its null value, for reduce and aggregate. */
    static final String SESSION_VALUES = SESSION_INPUT.replace(" a=null@31500", "");

    public static void main(String[] args) {
        runCases(CASES, args);
    }

    /** Runs the cases named in {@code args} (all when none are), each after its header. */
    static void runCases(Map<String, Runnable> cases, String[] args) {
        List<String> names = args.length == 0 ? List.copyOf(cases.keySet()) : List.of(args);
        for (String name : names) {
            if (!cases.containsKey(name)) {
                System.err.println("unknown case '" + name + "'; cases: " + cases.keySet());
                System.exit(2);
            }
        }
        for (String name : names) {
            System.out.println("## " + name);
            cases.get(name).run();
        }
        System.out.flush();
    }

    // ---- cases ----

    /** The bytes of windowed keys on topics, as hex: time windows and sessions. */
    private static void windowedSerdes() {
        Serde<Windowed<String>> time = WindowedSerdes.timeWindowedSerdeFrom(String.class, 10_000L);
        Serde<Windowed<String>> session = WindowedSerdes.sessionWindowedSerdeFrom(String.class);
        byte[] t = time.serializer().serialize("t", new Windowed<>("ab", new TimeWindow(20_000L, 30_000L)));
        byte[] s = session.serializer().serialize("t", new Windowed<>("k", new SessionWindow(5L, 9L)));
        System.out.println("time " + hex(t));
        System.out.println("session " + hex(s));
        Windowed<String> back = time.deserializer().deserialize("t", t);
        System.out.println("time read " + back.key() + " " + back.window().start() + " " + back.window().end());
    }

    /** The windows a timestamp falls in: tumbling 10 s, hopping 10 s every 3 s. */
    private static void timeWindowsFor() {
        TimeWindows tumbling = TimeWindows.ofSizeAndGrace(java.time.Duration.ofSeconds(10), java.time.Duration.ofSeconds(5));
        TimeWindows hopping = TimeWindows.ofSizeWithNoGrace(java.time.Duration.ofSeconds(10)).advanceBy(java.time.Duration.ofSeconds(3));
        for (long ts : new long[] {0L, 9_999L, 10_000L}) {
            System.out.println("tumbling " + ts + " " + tumbling.windowsFor(ts).keySet());
        }
        for (long ts : new long[] {1_000L, 10_500L}) {
            System.out.println("hopping " + ts + " " + hopping.windowsFor(ts).keySet());
        }
    }

    private static String hex(byte[] bytes) {
        StringBuilder out = new StringBuilder();
        for (byte b : bytes) {
            out.append(String.format("%02x", b));
        }
        return out.toString();
    }

    private static Materialized<String, Long, KeyValueStore<Bytes, byte[]>> longStore(
            String name, boolean cached) {
        Materialized<String, Long, KeyValueStore<Bytes, byte[]>> m =
                Materialized.<String, Long, KeyValueStore<Bytes, byte[]>>as(name)
                        .withKeySerde(S).withValueSerde(L);
        return cached ? m : m.withCachingDisabled();
    }

    private static Materialized<String, String, KeyValueStore<Bytes, byte[]>> stringStore(
            String name, boolean cached) {
        Materialized<String, String, KeyValueStore<Bytes, byte[]>> m =
                Materialized.<String, String, KeyValueStore<Bytes, byte[]>>as(name)
                        .withKeySerde(S).withValueSerde(S);
        return cached ? m : m.withCachingDisabled();
    }

    /** a:1@10, a:1@5, b:1@7, a:1@20, a:1@3, null:1@8, a:null@9 (all values 1). */
    private static void streamCount(boolean cached) {
        StreamsBuilder b = new StreamsBuilder();
        b.stream("in", Consumed.with(S, L))
                .groupByKey()
                .count(longStore("s", cached))
                .toStream().to("out", Produced.with(S, L));
        run(b, d -> streamInputs(d, new Long[] {1L, 1L, 1L, 1L, 1L, 1L}), L.deserializer(), "s");
    }

    private static void streamReduce() {
        StreamsBuilder b = new StreamsBuilder();
        b.stream("in", Consumed.with(S, L))
                .groupByKey()
                .reduce(Long::sum, longStore("s", false))
                .toStream().to("out", Produced.with(S, L));
        run(b, d -> streamInputs(d, new Long[] {1L, 2L, 3L, 4L, 5L, 6L}), L.deserializer(), "s");
    }

    private static void streamAggregate() {
        StreamsBuilder b = new StreamsBuilder();
        b.stream("in", Consumed.with(S, L))
                .groupByKey()
                .aggregate(() -> 0L, (k, v, agg) -> agg + v, longStore("s", false))
                .toStream().to("out", Produced.with(S, L));
        run(b, d -> streamInputs(d, new Long[] {1L, 2L, 3L, 4L, 5L, 6L}), L.deserializer(), "s");
    }

    /** a:v0@10, a:v1@5, b:v2@7, a:v3@20, a:v4@3, null:v5@8, a:null@9. */
    private static void streamInputs(TopologyTestDriver d, Long[] v) {
        TestInputTopic<String, Long> in = d.createInputTopic("in", S.serializer(), L.serializer());
        pipe(in, "a", v[0], 10);
        pipe(in, "a", v[1], 5);
        pipe(in, "b", v[2], 7);
        pipe(in, "a", v[3], 20);
        pipe(in, "a", v[4], 3);
        pipe(in, null, v[5], 8);
        pipe(in, "a", null, 9);
    }

    private static void tableCount() {
        StreamsBuilder b = new StreamsBuilder();
        b.table("in", Consumed.with(S, S), stringStore("t", false))
                .groupBy((k, v) -> KeyValue.pair(v, v), Grouped.with(S, S))
                .count(longStore("s", false))
                .toStream().to("out", Produced.with(S, L));
        run(b, d -> {
            TestInputTopic<String, String> in = d.createInputTopic("in", S.serializer(), S.serializer());
            pipe(in, "x", "red", 10);
            pipe(in, "y", "red", 5);
            pipe(in, "x", "blue", 20);
            pipe(in, "z", "blue", 3);
            pipe(in, "y", null, 30);
            pipe(in, "x", null, 1);
        }, L.deserializer(), "s");
    }

    private static void tableReduce() {
        StreamsBuilder b = new StreamsBuilder();
        b.table("in", Consumed.with(S, L), longStore("t", false))
                .groupBy((k, v) -> KeyValue.pair(k.substring(0, 1), v), Grouped.with(S, L))
                .reduce(Long::sum, (x, y) -> x - y, longStore("s", false))
                .toStream().to("out", Produced.with(S, L));
        run(b, Oracle::tableReduceInputs, L.deserializer(), "s");
    }

    private static void tableAggregate() {
        StreamsBuilder b = new StreamsBuilder();
        b.table("in", Consumed.with(S, L), longStore("t", false))
                .groupBy((k, v) -> KeyValue.pair(k.substring(0, 1), v), Grouped.with(S, L))
                .aggregate(() -> 0L, (k, v, agg) -> agg + v, (k, v, agg) -> agg - v,
                        longStore("s", false))
                .toStream().to("out", Produced.with(S, L));
        run(b, Oracle::tableReduceInputs, L.deserializer(), "s");
    }

    /** a1:1@10, a2:2@5, a1:3@20, b1:4@3, a2:null@1. */
    private static void tableReduceInputs(TopologyTestDriver d) {
        TestInputTopic<String, Long> in = d.createInputTopic("in", S.serializer(), L.serializer());
        pipe(in, "a1", 1L, 10);
        pipe(in, "a2", 2L, 5);
        pipe(in, "a1", 3L, 20);
        pipe(in, "b1", 4L, 3);
        pipe(in, "a2", null, 1);
    }

    private static void tableRegroupSameKey() {
        StreamsBuilder b = new StreamsBuilder();
        b.table("in", Consumed.with(S, L), longStore("t", false))
                .groupBy((k, v) -> KeyValue.pair(k, v), Grouped.with(S, L))
                .reduce(Long::sum, (x, y) -> x - y, longStore("s", false))
                .toStream().to("out", Produced.with(S, L));
        run(b, d -> {
            TestInputTopic<String, Long> in = d.createInputTopic("in", S.serializer(), L.serializer());
            pipe(in, "a", 1L, 10);
            pipe(in, "a", 5L, 20);
            pipe(in, "a", 2L, 15);
            pipe(in, "a", null, 30);
        }, L.deserializer(), "s");
    }

    /** String values. a:1@10, b:null@11, a:null@12, a:null@13. */
    private static void tableSourceDeleteAbsent(boolean cached) {
        StreamsBuilder b = new StreamsBuilder();
        b.table("in", Consumed.with(S, S), stringStore("t", cached))
                .toStream().to("out", Produced.with(S, S));
        run(b, d -> {
            TestInputTopic<String, String> in = d.createInputTopic("in", S.serializer(), S.serializer());
            pipe(in, "a", "1", 10);
            pipe(in, "b", null, 11);
            pipe(in, "a", null, 12);
            pipe(in, "a", null, 13);
        }, S.deserializer(), "t");
    }

    private static void tableUnmaterializedFilter() {
        StreamsBuilder b = new StreamsBuilder();
        b.table("in", Consumed.with(S, S))
                .filter((k, v) -> v.startsWith("keep"))
                .toStream().to("out", Produced.with(S, S));
        run(b, Oracle::filterInputs, S.deserializer(), null);
    }

    private static void tableMaterializedFilter() {
        StreamsBuilder b = new StreamsBuilder();
        b.table("in", Consumed.with(S, S), stringStore("t", false))
                .filter((k, v) -> v.startsWith("keep"))
                .toStream().to("out", Produced.with(S, S));
        run(b, Oracle::filterInputs, S.deserializer(), "t");
    }

    private static void tableFilterThenCount() {
        StreamsBuilder b = new StreamsBuilder();
        b.table("in", Consumed.with(S, S))
                .filter((k, v) -> v.startsWith("keep"))
                .groupBy((k, v) -> KeyValue.pair(v.substring(0, 4), v), Grouped.with(S, S))
                .count(longStore("s", false))
                .toStream().to("out", Produced.with(S, L));
        run(b, Oracle::filterInputs, L.deserializer(), "s");
    }

    /** a:keep1@1, b:drop@2, a:drop@3, c:null@4, b:keep2@5. */
    private static void filterInputs(TopologyTestDriver d) {
        TestInputTopic<String, String> in = d.createInputTopic("in", S.serializer(), S.serializer());
        pipe(in, "a", "keep1", 1);
        pipe(in, "b", "drop", 2);
        pipe(in, "a", "drop", 3);
        pipe(in, "c", null, 4);
        pipe(in, "b", "keep2", 5);
    }

    private static void tableMapValuesUnmaterialized() {
        StreamsBuilder b = new StreamsBuilder();
        KTable<String, String> t = b.table("in", Consumed.with(S, S));
        t.mapValues(v -> v.toUpperCase())
                .toStream().to("out", Produced.with(S, S));
        run(b, d -> {
            TestInputTopic<String, String> in = d.createInputTopic("in", S.serializer(), S.serializer());
            pipe(in, "a", "x", 1);
            pipe(in, "a", null, 2);
            pipe(in, "b", null, 3);
        }, S.deserializer(), null);
    }

    /** String values. a:1@10, a:2@5, b:null@7, a:null@8, null:3@9. */
    private static void toTable() {
        StreamsBuilder b = new StreamsBuilder();
        b.stream("in", Consumed.with(S, S))
                .toTable(stringStore("t", false))
                .toStream().to("out", Produced.with(S, S));
        run(b, d -> {
            TestInputTopic<String, String> in = d.createInputTopic("in", S.serializer(), S.serializer());
            pipe(in, "a", "1", 10);
            pipe(in, "a", "2", 5);
            pipe(in, "b", null, 7);
            pipe(in, "a", null, 8);
            pipe(in, null, "3", 9);
        }, S.deserializer(), "t");
    }


    // ---- windows ----

    private static final java.time.Duration SEC = java.time.Duration.ofSeconds(1);

    private static java.time.Duration secs(long n) {
        return java.time.Duration.ofSeconds(n);
    }

    private static Materialized<String, Long, org.apache.kafka.streams.state.WindowStore<Bytes, byte[]>>
            windowStore(String name, boolean cached) {
        Materialized<String, Long, org.apache.kafka.streams.state.WindowStore<Bytes, byte[]>> m =
                Materialized.<String, Long, org.apache.kafka.streams.state.WindowStore<Bytes, byte[]>>as(name)
                        .withKeySerde(S).withValueSerde(L);
        return cached ? m : m.withCachingDisabled();
    }

    private static Materialized<String, Long, org.apache.kafka.streams.state.SessionStore<Bytes, byte[]>>
            sessionStore(String name, boolean cached) {
        Materialized<String, Long, org.apache.kafka.streams.state.SessionStore<Bytes, byte[]>> m =
                Materialized.<String, Long, org.apache.kafka.streams.state.SessionStore<Bytes, byte[]>>as(name)
                        .withKeySerde(S).withValueSerde(L);
        return cached ? m : m.withCachingDisabled();
    }

    /** A windowed table's changes to "out", the key written {@code key@start/end}. */
    private static void windowedOut(KTable<Windowed<String>, Long> table) {
        table.toStream()
                .map((wk, v) -> KeyValue.pair(wk == null ? null
                        : wk.key() + "@" + wk.window().start() + "/" + wk.window().end(), v))
                .to("out", Produced.with(S, L));
    }

    private static org.apache.kafka.streams.kstream.KGroupedStream<String, Long> grouped(StreamsBuilder b) {
        return b.stream("in", Consumed.with(S, L)).groupByKey(Grouped.with(S, L));
    }

    private static void tumblingCount(boolean cached) {
        StreamsBuilder b = new StreamsBuilder();
        windowedOut(grouped(b).windowedBy(TimeWindows.ofSizeAndGrace(secs(10), secs(5)))
                .count(windowStore("w", cached)));
        runWindowed(b, WINDOW_INPUT, "w");
    }

    private static void hoppingReduce(boolean cached) {
        StreamsBuilder b = new StreamsBuilder();
        windowedOut(grouped(b)
                .windowedBy(TimeWindows.ofSizeAndGrace(secs(10), secs(5)).advanceBy(secs(5)))
                .reduce(Long::sum, windowStore("w", cached)));
        runWindowed(b, WINDOW_VALUES, "w");
    }

    private static void tumblingAggregateNoGrace() {
        StreamsBuilder b = new StreamsBuilder();
        windowedOut(grouped(b).windowedBy(TimeWindows.ofSizeWithNoGrace(secs(10)))
                .aggregate(() -> 100L, (k, v, agg) -> agg + v, windowStore("w", false)));
        runWindowed(b, WINDOW_VALUES, "w");
    }

    private static void tumblingEmitFinal(boolean hoppingCached) {
        StreamsBuilder b = new StreamsBuilder();
        TimeWindows windows = TimeWindows.ofSizeAndGrace(secs(10), secs(5));
        if (hoppingCached) {
            windows = windows.advanceBy(secs(5));
        }
        windowedOut(grouped(b).windowedBy(windows)
                .emitStrategy(org.apache.kafka.streams.kstream.EmitStrategy.onWindowClose())
                .count(windowStore("w", hoppingCached)));
        runWindowed(b, WINDOW_INPUT, "w");
    }

    private static void slidingCount(boolean cached) {
        StreamsBuilder b = new StreamsBuilder();
        windowedOut(grouped(b)
                .windowedBy(org.apache.kafka.streams.kstream.SlidingWindows.ofTimeDifferenceAndGrace(secs(5), secs(10)))
                .count(windowStore("w", cached)));
        runWindowed(b, WINDOW_INPUT, "w");
    }

    private static void slidingReduceNoGrace() {
        StreamsBuilder b = new StreamsBuilder();
        windowedOut(grouped(b)
                .windowedBy(org.apache.kafka.streams.kstream.SlidingWindows.ofTimeDifferenceWithNoGrace(secs(5)))
                .reduce(Long::sum, windowStore("w", false)));
        runWindowed(b, WINDOW_VALUES, "w");
    }

    private static void slidingEmitFinal() {
        StreamsBuilder b = new StreamsBuilder();
        windowedOut(grouped(b)
                .windowedBy(org.apache.kafka.streams.kstream.SlidingWindows.ofTimeDifferenceAndGrace(secs(5), secs(10)))
                .emitStrategy(org.apache.kafka.streams.kstream.EmitStrategy.onWindowClose())
                .count(windowStore("w", false)));
        runWindowed(b, WINDOW_INPUT, "w");
    }

    private static void sessionEmitFinal() {
        StreamsBuilder b = new StreamsBuilder();
        windowedOut(grouped(b)
                .windowedBy(org.apache.kafka.streams.kstream.SessionWindows.ofInactivityGapAndGrace(secs(5), secs(10)))
                .emitStrategy(org.apache.kafka.streams.kstream.EmitStrategy.onWindowClose())
                .count(sessionStore("w", false)));
        runWindowed(b, SESSION_INPUT, "w");
    }

    private static void sessionCount(boolean cached) {
        StreamsBuilder b = new StreamsBuilder();
        windowedOut(grouped(b)
                .windowedBy(org.apache.kafka.streams.kstream.SessionWindows.ofInactivityGapAndGrace(secs(5), secs(10)))
                .count(sessionStore("w", cached)));
        runWindowed(b, SESSION_INPUT, "w");
    }

    private static void sessionAggregate() {
        StreamsBuilder b = new StreamsBuilder();
        windowedOut(grouped(b)
                .windowedBy(org.apache.kafka.streams.kstream.SessionWindows.ofInactivityGapWithNoGrace(secs(5)))
                .aggregate(() -> 0L, (k, v, agg) -> agg * 10 + v,
                        (k, x, y) -> x * 1000 + y, sessionStore("w", false)));
        runWindowed(b, SESSION_VALUES, "w");
    }

    private static void suppressWindowClose(boolean cached) {
        StreamsBuilder b = new StreamsBuilder();
        windowedOut(grouped(b).windowedBy(TimeWindows.ofSizeAndGrace(secs(10), secs(5)))
                .count(windowStore("w", cached))
                .suppress(org.apache.kafka.streams.kstream.Suppressed.untilWindowCloses(
                        org.apache.kafka.streams.kstream.Suppressed.BufferConfig.unbounded())));
        runWindowed(b, WINDOW_INPUT, "w");
    }

    /** A table's counts, at most one update per key every 10 s of stream time. */
    private static void suppressTimeLimit() {
        StreamsBuilder b = new StreamsBuilder();
        b.stream("in", Consumed.with(S, L)).groupByKey(Grouped.with(S, L))
                .count(longStore("s", false))
                .suppress(org.apache.kafka.streams.kstream.Suppressed.untilTimeLimit(secs(10),
                        org.apache.kafka.streams.kstream.Suppressed.BufferConfig.maxRecords(100)))
                .toStream().to("out", Produced.with(S, L));
        run(b, d -> feed(d, WINDOW_INPUT), L.deserializer(), "s");
    }

    /** The names of windowed aggregations' nodes and stores, and of a suppression's. */
    private static void describeWindowed() {
        StreamsBuilder b = new StreamsBuilder();
        org.apache.kafka.streams.kstream.KGroupedStream<String, Long> g = grouped(b);
        g.windowedBy(TimeWindows.ofSizeAndGrace(secs(10), secs(5)))
                .count(windowStore("w", true))
                .suppress(org.apache.kafka.streams.kstream.Suppressed.untilWindowCloses(
                        org.apache.kafka.streams.kstream.Suppressed.BufferConfig.unbounded()))
                .toStream()
                .to("out", Produced.with(WindowedSerdes.timeWindowedSerdeFrom(String.class, 10_000L), L));
        g.windowedBy(org.apache.kafka.streams.kstream.SessionWindows.ofInactivityGapWithNoGrace(secs(5)))
                .count()
                .toStream()
                .to("sessions", Produced.with(WindowedSerdes.sessionWindowedSerdeFrom(String.class), L));
        g.windowedBy(org.apache.kafka.streams.kstream.SlidingWindows.ofTimeDifferenceWithNoGrace(secs(5)))
                .reduce(Long::sum)
                .suppress(org.apache.kafka.streams.kstream.Suppressed.untilTimeLimit(secs(1),
                        org.apache.kafka.streams.kstream.Suppressed.BufferConfig.maxRecords(10)).withName("limited"))
                .toStream()
                .to("sliding", Produced.with(WindowedSerdes.timeWindowedSerdeFrom(String.class, 5_000L), L));
        System.out.print(b.build().describe());
    }

    /** Pipes {@code key=value@ts ...} (longs, {@code null} for none) into "in". */
    private static void feed(TopologyTestDriver d, String rows) {
        TestInputTopic<String, Long> in = d.createInputTopic("in", S.serializer(), L.serializer());
        for (String row : rows.trim().split("\\s+")) {
            int at = row.lastIndexOf('@');
            int eq = row.indexOf('=');
            String key = row.substring(0, eq);
            String value = row.substring(eq + 1, at);
            pipe(in, key.equals("null") ? null : key, value.equals("null") ? null : Long.valueOf(value),
                    Long.parseLong(row.substring(at + 1)));
        }
    }

    private static void runWindowed(StreamsBuilder builder, String input, String store) {
        Properties props = new Properties();
        props.put(StreamsConfig.APPLICATION_ID_CONFIG, "homa-oracle");
        props.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, "dummy:1234");
        try (TopologyTestDriver d = new TopologyTestDriver(builder.build(), props)) {
            RuntimeException failure = null;
            try {
                feed(d, input);
            } catch (RuntimeException e) {
                failure = e;
            }
            printOutput(d, L.deserializer());
            if (failure != null) {
                printException(failure);
                return;
            }
            printWindowStore(d, store);
            System.out.println("dropped " + dropped(d));
        } catch (RuntimeException e) {
            printException(e);
        }
    }

    /** The task's dropped-records total. */
    private static long dropped(TopologyTestDriver d) {
        double total = 0;
        for (Map.Entry<org.apache.kafka.common.MetricName, ? extends org.apache.kafka.common.Metric> m
                : d.metrics().entrySet()) {
            if (m.getKey().name().equals("dropped-records-total")) {
                total += ((Number) m.getValue().metricValue()).doubleValue();
            }
        }
        return (long) total;
    }

    /** A window or session store's entries, {@code key@start/end=value[@ts]}, sorted. */
    private static void printWindowStore(TopologyTestDriver d, String name) {
        List<String> lines = new java.util.ArrayList<>();
        org.apache.kafka.streams.state.WindowStore<String, ValueAndTimestamp<Long>> ws =
                d.getTimestampedWindowStore(name);
        if (ws != null) {
            try (KeyValueIterator<Windowed<String>, ValueAndTimestamp<Long>> it = ws.all()) {
                while (it.hasNext()) {
                    KeyValue<Windowed<String>, ValueAndTimestamp<Long>> kv = it.next();
                    lines.add(kv.key.key() + "@" + kv.key.window().start() + "/" + kv.key.window().end()
                            + "=" + kv.value.value() + "@" + kv.value.timestamp());
                }
            }
        } else {
            org.apache.kafka.streams.state.SessionStore<String, Long> ss = d.getSessionStore(name);
            try (KeyValueIterator<Windowed<String>, Long> it = ss.fetch("", "\uffff")) {
                while (it.hasNext()) {
                    KeyValue<Windowed<String>, Long> kv = it.next();
                    lines.add(kv.key.key() + "@" + kv.key.window().start() + "/" + kv.key.window().end()
                            + "=" + kv.value);
                }
            }
        }
        java.util.Collections.sort(lines);
        if (lines.isEmpty()) {
            System.out.println("store " + name + " (empty)");
        }
        for (String line : lines) {
            System.out.println("store " + name + " " + line);
        }
    }

    // ---- driver plumbing ----

    private static <V> void pipe(TestInputTopic<String, V> in, String key, V value, long ts) {
        if (key != null && value != null) {
            in.pipeInput(key, value, ts);
        } else {
            in.pipeInput(new TestRecord<>(key, value, Instant.ofEpochMilli(ts)));
        }
    }

    /**
     * Builds a driver on the topology, feeds it, then prints topic "out" and the store
     * {@code store} (none when null). An exception while feeding is printed after the
     * records output before it.
     */
    private static void run(StreamsBuilder builder, Consumer<TopologyTestDriver> feed,
                            Deserializer<?> valueDeserializer, String store) {
        Properties props = new Properties();
        props.put(StreamsConfig.APPLICATION_ID_CONFIG, "homa-oracle");
        props.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, "dummy:1234");
        try (TopologyTestDriver d = new TopologyTestDriver(builder.build(), props)) {
            RuntimeException failure = null;
            try {
                feed.accept(d);
            } catch (RuntimeException e) {
                failure = e;
            }
            printOutput(d, valueDeserializer);
            if (failure != null) {
                printException(failure);
                return;
            }
            if (store != null) {
                printStore(d, store);
            }
        } catch (RuntimeException e) {
            printException(e);
        }
    }

    private static void printOutput(TopologyTestDriver d, Deserializer<?> valueDeserializer) {
        TestOutputTopic<String, ?> out =
                d.createOutputTopic("out", S.deserializer(), valueDeserializer);
        for (TestRecord<String, ?> r : out.readRecordsToList()) {
            System.out.println("out key=" + r.key() + " value=" + r.value()
                    + " ts=" + r.timestamp());
        }
    }

    private static void printStore(TopologyTestDriver d, String name) {
        KeyValueStore<Object, ValueAndTimestamp<Object>> ts = d.getTimestampedKeyValueStore(name);
        if (ts != null) {
            try (KeyValueIterator<Object, ValueAndTimestamp<Object>> it = ts.all()) {
                if (!it.hasNext()) {
                    System.out.println("store " + name + " (empty)");
                }
                while (it.hasNext()) {
                    KeyValue<Object, ValueAndTimestamp<Object>> kv = it.next();
                    System.out.println("store " + name + " " + kv.key + "="
                            + kv.value.value() + "@" + kv.value.timestamp());
                }
            }
            return;
        }
        KeyValueStore<Object, Object> kvs = d.getKeyValueStore(name);
        if (kvs == null) {
            System.out.println("store " + name + " (not found)");
            return;
        }
        try (KeyValueIterator<Object, Object> it = kvs.all()) {
            if (!it.hasNext()) {
                System.out.println("store " + name + " (empty)");
            }
            while (it.hasNext()) {
                KeyValue<Object, Object> kv = it.next();
                System.out.println("store " + name + " " + kv.key + "=" + kv.value + " (no timestamp)");
            }
        }
    }

    private static void printException(Throwable e) {
        System.out.println("exception " + e.getClass().getName() + ": " + e.getMessage());
        for (Throwable c = e.getCause(); c != null; c = c.getCause()) {
            System.out.println("  caused by " + c.getClass().getName() + ": " + c.getMessage());
        }
    }
}
