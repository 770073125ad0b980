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
    }

    public static void main(String[] args) {
        List<String> names = args.length == 0 ? List.copyOf(CASES.keySet()) : List.of(args);
        for (String name : names) {
            if (!CASES.containsKey(name)) {
                System.err.println("unknown case '" + name + "'; cases: " + CASES.keySet());
                System.exit(2);
            }
        }
        for (String name : names) {
            System.out.println("## " + name);
            CASES.get(name).run();
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
