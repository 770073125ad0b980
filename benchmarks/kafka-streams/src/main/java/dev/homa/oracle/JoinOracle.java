package dev.homa.oracle;

import java.time.Duration;
import java.time.Instant;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.function.BiFunction;

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
import org.apache.kafka.streams.kstream.JoinWindows;
import org.apache.kafka.streams.kstream.Joined;
import org.apache.kafka.streams.kstream.KStream;
import org.apache.kafka.streams.kstream.KTable;
import org.apache.kafka.streams.kstream.Materialized;
import org.apache.kafka.streams.kstream.Produced;
import org.apache.kafka.streams.kstream.StreamJoined;
import org.apache.kafka.streams.state.KeyValueIterator;
import org.apache.kafka.streams.state.KeyValueStore;
import org.apache.kafka.streams.state.ValueAndTimestamp;
import org.apache.kafka.streams.test.TestRecord;

/**
 * Kafka Streams' own TopologyTestDriver as the oracle of HOMA's joins: runs small fixed
 * cases and prints the records of topic "out" in order, then the task's dropped records.
 *
 * <p>Usage: {@code java -cp target/classes:target/lib/* dev.homa.oracle.JoinOracle [case ...]}
 * (all cases when none are named); the output is kept in {@code join-oracle-output.txt}.
 *
 * <p>Input rows are {@code L:key=value@ts} (topic "left") or {@code R:key=value@ts} (topic
 * "right"), strings, {@code null} for none. The joiner is {@code l + "+" + r}, a missing side
 * printed as {@code null}. Output per case: {@code ## <case>}, then
 * {@code out key=<k|null> value=<v|null> ts=<t>} per record, then {@code dropped <n>}; a
 * describe case prints the topology's description instead.
 */
public final class JoinOracle {
    private JoinOracle() {}

    private static final Serde<String> S = Serdes.String();

    /** A join of the streams "left" and "right" into one stream. */
    private interface Join extends BiFunction<KStream<String, String>, KStream<String, String>,
            KStream<String, String>> {}

    private static final Map<String, Runnable> CASES = new LinkedHashMap<>();

    private static Duration ms(long n) {
        return Duration.ofMillis(n);
    }

    private static Join inner(JoinWindows w) {
        return (l, r) -> l.join(r, (a, b) -> a + "+" + b, w, StreamJoined.with(S, S, S));
    }

    private static Join left(JoinWindows w) {
        return (l, r) -> l.leftJoin(r, (a, b) -> a + "+" + b, w, StreamJoined.with(S, S, S));
    }

    private static Join outer(JoinWindows w) {
        return (l, r) -> l.outerJoin(r, (a, b) -> a + "+" + b, w, StreamJoined.with(S, S, S));
    }

    private static void streamStream(String name, Join join, String input) {
        CASES.put(name, () -> run(b -> join.apply(b.stream("left", Consumed.with(S, S)),
                b.stream("right", Consumed.with(S, S))), input));
    }

    /** A case of the stream "left" joined with the table of topic "right". */
    private static void streamTable(String name, boolean leftJoin, String input) {
        CASES.put(name, () -> run(b -> {
            KStream<String, String> l = b.stream("left", Consumed.with(S, S));
            KTable<String, String> r = b.table("right", Consumed.with(S, S));
            return leftJoin ? l.leftJoin(r, (a, c) -> a + "+" + c) : l.join(r, (a, c) -> a + "+" + c);
        }, input));
    }

    static {
        JoinWindows w100 = JoinWindows.ofTimeDifferenceWithNoGrace(ms(100));
        JoinWindows w10 = JoinWindows.ofTimeDifferenceWithNoGrace(ms(10));
        streamStream("ss-inner-both-ways", inner(w100),
                "L:A=a1@10 R:A=b1@50 R:A=b2@120 L:A=a2@200");
        streamStream("ss-inner-out-of-order-grace",
                inner(JoinWindows.ofTimeDifferenceAndGrace(ms(100), ms(50))),
                "L:A=a1@100 L:A=a2@50 L:A=a3@100 R:A=b1@80");
        streamStream("ss-inner-late", inner(w10),
                "L:A=a1@0 L:A=a2@30 R:A=b1@5 L:A=a3@8 R:A=b2@9");
        streamStream("ss-inner-nulls", inner(w100), "L:null=a@10 L:A=null@20 R:A=b@20");
        streamStream("ss-left-nulls", left(w100), "L:null=a@10 R:null=b@10 L:A=null@10");
        streamStream("ss-left-dropped-moves-time", left(w10),
                "L:A=a1@0 L:A=null@100 R:B=b@50 L:C=c@100");
        streamStream("ss-outer-null-key", outer(w10), "R:null=b@5 L:null=a@6");
        streamStream("ss-left-after-close",
                left(JoinWindows.ofTimeDifferenceAndGrace(ms(100), ms(10))),
                "L:A=a1@0 R:B=b1@105 L:C=c1@110 R:B=b2@111 R:A=b3@50");
        streamStream("ss-left-out-of-order-in-grace",
                left(JoinWindows.ofTimeDifferenceAndGrace(ms(10), ms(20))),
                "L:A=a1@100 L:B=b1@95 L:C=c1@85 R:C=x@90 R:Z=z@131");
        streamStream("ss-outer-both-unmatched", outer(w10),
                "L:A=a1@5 R:B=b1@5 L:C=c1@6 R:D=d1@30");
        streamStream("ss-inner-asymmetric",
                inner(JoinWindows.ofTimeDifferenceWithNoGrace(ms(50)).before(ms(10))),
                "L:A=a1@100 R:A=b1@89 R:A=b2@90 R:A=b3@150 R:A=b4@151 L:A=a2@140");
        streamStream("ss-inner-bounds", inner(w10),
                "L:A=a1@100 R:A=b1@110 R:A=b2@90 R:A=b3@89 R:A=b4@111 L:A=a2@95");
        streamStream("ss-inner-zero-window", inner(JoinWindows.ofTimeDifferenceWithNoGrace(ms(0))),
                "L:A=a@5 R:A=b@5");
        streamStream("ss-inner-zero-window-grace",
                inner(JoinWindows.ofTimeDifferenceAndGrace(ms(0), ms(1))), "L:A=a@5 R:A=b@5");
        streamStream("ss-left-zero-window", left(JoinWindows.ofTimeDifferenceWithNoGrace(ms(0))),
                "L:A=a@5 R:A=b@5 L:B=x@6");
        streamStream("ss-outer-match-removes-held", outer(w10),
                "L:A=a1@0 R:A=b1@5 R:A=b2@30 L:X=x@41");
        streamStream("ss-left-after-zero",
                left(JoinWindows.ofTimeDifferenceWithNoGrace(ms(100)).after(ms(0))),
                "L:A=a1@10 R:B=x@11 L:C=y@12");
        streamStream("ss-outer-many",
                outer(JoinWindows.ofTimeDifferenceAndGrace(ms(20), ms(5))),
                "L:A=a1@10 L:B=b1@12 R:A=x1@15 R:C=c1@16 L:A=a2@14 R:A=x2@40 L:B=b2@44 R:B=y1@30"
                        + " L:D=d1@70 R:A=x3@71 L:C=c2@20 R:D=z1@100 L:E=e1@100 R:E=e2@100"
                        + " L:A=a3@60 R:F=f1@200");
        CASES.put("ss-describe", JoinOracle::describeStreamStream);
        String missing = "R:A=a1@10 L:A=x1@5 L:B=x2@6";
        String updates = "R:A=a1@1 L:A=x@2 R:A=a2@3 R:A=null@4 L:A=y@5 R:B=b1@9 L:B=z@3";
        String nulls = "R:A=a1@1 L:null=x@7 L:A=null@8 L:A=w@9";
        streamTable("st-inner-missing", false, missing);
        streamTable("st-left-missing", true, missing);
        streamTable("st-inner-updates", false, updates);
        streamTable("st-left-updates", true, updates);
        streamTable("st-inner-nulls", false, nulls);
        streamTable("st-left-nulls", true, nulls);
        CASES.put("st-describe", JoinOracle::describeStreamTable);
        String tables = "L:A=a1@10 R:A=b1@5 L:A=a2@3 R:B=c1@7 R:A=null@20 L:A=null@15 L:B=null@8"
                + " R:C=null@9 R:B=null@30 L:D=d1@40 R:D=d2@41 L:D=d3@42 R:D=d4@43 R:D=null@44 L:D=null@45";
        for (String kind : List.of("inner", "left", "outer")) {
            for (boolean cached : List.of(true, false)) {
                String name = "tt-" + kind + (cached ? "" : "-uncached");
                CASES.put(name, () -> tableTable(kind, cached, null, tables));
                CASES.put(name + "-materialized", () -> tableTable(kind, cached, "j", tables));
            }
        }
        CASES.put("tt-describe", JoinOracle::describeTableTable);
        String cogrouped = "L:A=1@10 R:A=2@5 L:B=3@7 R:A=4@20 L:null=5@21 R:B=null@22 L:A=6@3 R:C=7@30";
        CASES.put("cogroup", () -> cogroup(true, cogrouped));
        CASES.put("cogroup-uncached", () -> cogroup(false, cogrouped));
        CASES.put("cogroup-describe", JoinOracle::describeCogroup);
        String windowedCogroup = "L:A=1@1 R:A=2@5 L:A=3@12 R:B=4@3 L:A=5@30 R:A=6@8 L:A=7@4";
        CASES.put("cogroup-tumbling", () -> run(JoinOracle::cogroupedByWindow, windowedCogroup, true, null));
        CASES.put("cogroup-tumbling-uncached",
                () -> run(JoinOracle::cogroupedByWindow, windowedCogroup, false, null));
        String slidingCogroup = "L:A=1@1 R:A=2@5 L:A=3@12 R:B=4@3 L:A=5@30 R:A=6@20 L:A=7@14 R:A=8@26";
        CASES.put("cogroup-sliding", () -> run(JoinOracle::cogroupedBySlidingWindow, slidingCogroup, true, null));
        CASES.put("cogroup-sliding-uncached",
                () -> run(JoinOracle::cogroupedBySlidingWindow, slidingCogroup, false, null));
        String sessionCogroup = "L:A=1@1 R:A=2@4 L:B=3@3 R:A=4@20 L:A=5@12 R:A=6@40 L:A=7@2 R:B=8@9";
        CASES.put("cogroup-session", () -> run(JoinOracle::cogroupedBySession, sessionCogroup, true, null));
        CASES.put("cogroup-session-uncached",
                () -> run(JoinOracle::cogroupedBySession, sessionCogroup, false, null));
        for (Map.Entry<String, String> c : fkInputs().entrySet()) {
            for (boolean leftJoin : List.of(false, true)) {
                for (boolean cached : List.of(true, false)) {
                    for (String store : java.util.Arrays.asList(null, "res")) {
                        String name = fkCase(c.getKey(), leftJoin, cached, store);
                        CASES.put(name, () -> fk(leftJoin, cached, store, c.getValue()));
                    }
                }
            }
        }
        String global = "L:o1=c1|a@10 R:c1=Alice@5 L:o2=c1|b@20 R:c1=null@30 L:o3=c1|c@25 R:c2=Bob@40"
                + " L:null=c2|d@41 L:o5=nomap|e@50 L:o6=null@60 R:null=NullKeyCust@70 R:c3=X@100"
                + " R:c3=Y@50 L:o7=c3|f@7 L:o8=c9|g@80";
        CASES.put("global-inner", () -> run(b -> globalJoined(b, false), global, true, "g"));
        CASES.put("global-left", () -> run(b -> globalJoined(b, true), global, true, "g"));
        CASES.put("global-describe-stream-first", () -> describeGlobal(true));
        CASES.put("global-describe-table-first", () -> describeGlobal(false));
        CASES.put("fk-describe", () -> describeForeignKey(false));
        CASES.put("fk-describe-named", () -> describeForeignKey(true));
    }

    /**
     * Foreign-key joins: the tables of "left" (orders: {@code customer:item}, no customer
     * without a colon) and "right" (customers), by key o*, c*.
     */
    private static Map<String, String> fkInputs() {
        Map<String, String> inputs = new LinkedHashMap<>();
        inputs.put("order-then-customer", "L:o1=c1:burger@10 R:c1=alice@20");
        inputs.put("customer-newer", "R:c1=alice@30 L:o1=c1:burger@20");
        inputs.put("fan-out", "R:c1=alice@1 L:o2=c1:fries@2 L:o1=c1:burger@3 L:o3=c2:soda@4"
                + " R:c1=alicia@5 R:c3=x@6 L:o10=c1:tea@7 R:c1=al@8");
        inputs.put("fk-change", "R:c1=alice@1 R:c2=bob@2 L:o1=c1:burger@3 L:o1=c2:burger@4"
                + " R:c1=alice2@5 R:c2=bob2@6");
        inputs.put("fk-change-missing", "R:c1=alice@1 L:o1=c1:burger@2 L:o1=c9:burger@3 R:c9=zed@4");
        inputs.put("customer-deleted", "R:c1=alice@1 L:o1=c1:burger@2 L:o2=c1:fries@3 R:c1=null@4"
                + " R:c1=null@5 R:c1=alice3@6");
        inputs.put("order-deleted", "R:c1=alice@50 L:o1=c1:burger@10 L:o1=null@20 L:o1=null@30");
        inputs.put("no-foreign-key", "R:c1=alice@1 L:o1=burger@2 L:o1=c1:burger@3 L:o1=fries@4"
                + " L:o1=null@5");
        inputs.put("out-of-order", "R:c1=alice@100 L:o1=c1:burger@50 L:o1=c1:fries@200"
                + " R:c1=alex@60 L:o1=c1:soda@10");
        inputs.put("missing-customers", "L:o1=c8:a@1 L:o1=c8:b@2 L:o1=c9:b@3");
        inputs.put("same-again", "R:c1=alice@1 L:o1=c1:burger@2 L:o1=c1:burger@3 R:c1=alice@4");
        inputs.put("empty-customer", "R:c1=@1 L:o1=c1:burger@2");
        inputs.put("absent-deletes", "L:o1=null@1 R:c1=alice@2 L:o1=null@3 R:c2=null@4"
                + " L:o2=c2:a@5 R:c2=null@6");
        inputs.put("fk-change-and-back", "R:c1=alice@1 R:c2=bob@2 L:o1=c1:a@3 L:o1=c2:a@4"
                + " L:o1=c1:a@5 R:c2=bob2@6 R:c1=alice2@7");
        inputs.put("null-keys", "L:null=c1:a@1 R:null=x@2 R:c1=alice@3 L:o1=c1:b@4");
        return inputs;
    }

    private static String fkCase(String input, boolean leftJoin, boolean cached, String store) {
        return "fk-" + input + (leftJoin ? "-left" : "") + (cached ? "" : "-uncached")
                + (store == null ? "" : "-materialized");
    }

    /** An order's customer: what comes before its colon, none without one. */
    private static String customerOf(String order) {
        int colon = order.indexOf(':');
        return colon < 0 ? null : order.substring(0, colon);
    }

    private static void fk(boolean leftJoin, boolean cached, String store, String input) {
        run(b -> {
            KTable<String, String> orders = b.table("left", Consumed.with(S, S));
            KTable<String, String> customers = b.table("right", Consumed.with(S, S));
            org.apache.kafka.streams.kstream.ValueJoiner<String, String, String> j = (o, c) -> o + "/" + c;
            Materialized<String, String, KeyValueStore<Bytes, byte[]>> m = store == null
                    ? Materialized.with(S, S)
                    : Materialized.<String, String, KeyValueStore<Bytes, byte[]>>as(store)
                            .withKeySerde(S).withValueSerde(S);
            KTable<String, String> joined = leftJoin
                    ? orders.leftJoin(customers, JoinOracle::customerOf, j, m)
                    : orders.join(customers, JoinOracle::customerOf, j, m);
            return joined.toStream();
        }, input, cached, store);
    }

    /**
     * A record's customer: what comes before its bar, none for one starting "nomap" (Kafka
     * Streams asks for a record without a value too, which it then drops).
     */
    private static String customerKey(String order) {
        if (order == null) {
            return "c1";
        }
        return order.startsWith("nomap") ? null : order.split("\\|")[0];
    }

    /** The stream "left" joined with the global table of "right" (store "g") by customer. */
    private static KStream<String, String> globalJoined(StreamsBuilder b, boolean leftJoin) {
        KStream<String, String> orders = b.stream("left", Consumed.with(S, S));
        org.apache.kafka.streams.kstream.GlobalKTable<String, String> customers = b.globalTable("right",
                Consumed.with(S, S), Materialized.<String, String, KeyValueStore<Bytes, byte[]>>as("g")
                        .withKeySerde(S).withValueSerde(S));
        org.apache.kafka.streams.kstream.ValueJoiner<String, String, String> j = (o, c) -> o + "/" + c;
        return leftJoin
                ? orders.leftJoin(customers, (k, v) -> customerKey(v), j)
                : orders.join(customers, (k, v) -> customerKey(v), j);
    }

    /** The names of a stream-global table join's nodes and store, the stream or the table first. */
    private static void describeGlobal(boolean streamFirst) {
        StreamsBuilder b = new StreamsBuilder();
        KStream<String, String> orders = streamFirst ? b.stream("orders", Consumed.with(S, S)) : null;
        org.apache.kafka.streams.kstream.GlobalKTable<String, String> customers =
                b.globalTable("customers", Consumed.with(S, S));
        if (!streamFirst) {
            orders = b.stream("orders", Consumed.with(S, S));
        }
        orders.join(customers, (k, v) -> customerKey(v), (o, c) -> o + "/" + c).to("out", Produced.with(S, S));
        System.out.print(b.build().describe());
    }

    /** The names of a foreign-key join's nodes, topics and stores, generated or named. */
    private static void describeForeignKey(boolean named) {
        StreamsBuilder b = new StreamsBuilder();
        KTable<String, String> orders = b.table("orders", Consumed.with(S, S));
        KTable<String, String> customers = b.table("customers", Consumed.with(S, S));
        org.apache.kafka.streams.kstream.ValueJoiner<String, String, String> j = (o, c) -> o + "/" + c;
        KTable<String, String> joined = named
                ? orders.join(customers, JoinOracle::customerOf, j,
                        org.apache.kafka.streams.kstream.TableJoined.as("oc"),
                        Materialized.<String, String, KeyValueStore<Bytes, byte[]>>as("res")
                                .withKeySerde(S).withValueSerde(S))
                : orders.leftJoin(customers, JoinOracle::customerOf, j);
        joined.toStream().to("out", Produced.with(S, S));
        System.out.print(b.build().describe());
    }

    public static void main(String[] args) {
        Oracle.runCases(CASES, args);
    }

    /** The names of the nodes and stores of an inner, a left and an outer join. */
    private static void describeStreamStream() {
        StreamsBuilder b = new StreamsBuilder();
        KStream<String, String> l = b.stream("left", Consumed.with(S, S));
        KStream<String, String> r = b.stream("right", Consumed.with(S, S));
        JoinWindows w = JoinWindows.ofTimeDifferenceAndGrace(ms(100), ms(10));
        inner(w).apply(l, r).to("inner", Produced.with(S, S));
        left(w).apply(l, r).to("left-out", Produced.with(S, S));
        outer(w).apply(l, r).to("outer", Produced.with(S, S));
        l.join(r, (x, y) -> x + y, w, StreamJoined.<String, String, String>with(S, S, S)
                .withName("named").withStoreName("stored")).to("named", Produced.with(S, S));
        l.outerJoin(r, (x, y) -> x + y, w, StreamJoined.<String, String, String>with(S, S, S)
                .withStoreName("kept")).to("kept", Produced.with(S, S));
        System.out.print(b.build().describe());
    }

    /** The tables of topics "left" and "right" joined, into store {@code store} unless null. */
    private static void tableTable(String kind, boolean cached, String store, String input) {
        run(b -> {
            KTable<String, String> l = b.table("left", Consumed.with(S, S));
            KTable<String, String> r = b.table("right", Consumed.with(S, S));
            org.apache.kafka.streams.kstream.ValueJoiner<String, String, String> j = (x, y) -> x + "+" + y;
            KTable<String, String> joined;
            if (store == null) {
                joined = switch (kind) {
                    case "inner" -> l.join(r, j);
                    case "left" -> l.leftJoin(r, j);
                    default -> l.outerJoin(r, j);
                };
            } else {
                Materialized<String, String, KeyValueStore<Bytes, byte[]>> m =
                        Materialized.<String, String, KeyValueStore<Bytes, byte[]>>as(store)
                                .withKeySerde(S).withValueSerde(S);
                joined = switch (kind) {
                    case "inner" -> l.join(r, j, m);
                    case "left" -> l.leftJoin(r, j, m);
                    default -> l.outerJoin(r, j, m);
                };
            }
            return joined.toStream();
        }, input, cached, store);
    }

    /** The streams "left" and "right" cogrouped: "+" and "*" before each of their values. */
    private static org.apache.kafka.streams.kstream.CogroupedKStream<String, String> cogroup(StreamsBuilder b) {
        KStream<String, String> one = b.stream("left", Consumed.with(S, S));
        KStream<String, String> two = b.stream("right", Consumed.with(S, S));
        return one.groupByKey(org.apache.kafka.streams.kstream.Grouped.with(S, S))
                .<String>cogroup((k, v, agg) -> agg + "+" + v)
                .cogroup(two.groupByKey(org.apache.kafka.streams.kstream.Grouped.with(S, S)),
                        (k, v, agg) -> agg + "*" + v);
    }

    /** Two streams cogrouped into one aggregate per key, into store "c". */
    private static KStream<String, String> cogrouped(StreamsBuilder b) {
        return cogroup(b)
                .aggregate(() -> "0", Materialized.<String, String, KeyValueStore<Bytes, byte[]>>as("c")
                        .withKeySerde(S).withValueSerde(S))
                .toStream();
    }

    /** {@link #cogrouped} by tumbling windows of 10 ms with a grace of 5 ms, keys {@code key@start/end}. */
    private static KStream<String, String> cogroupedByWindow(StreamsBuilder b) {
        return cogroup(b)
                .windowedBy(org.apache.kafka.streams.kstream.TimeWindows.ofSizeAndGrace(ms(10), ms(5)))
                .aggregate(() -> "0", Materialized.<String, String,
                        org.apache.kafka.streams.state.WindowStore<Bytes, byte[]>>as("w")
                        .withKeySerde(S).withValueSerde(S))
                .toStream()
                .map((wk, v) -> KeyValue.pair(wk.key() + "@" + wk.window().start() + "/" + wk.window().end(), v));
    }

    /** {@link #cogrouped} by sliding windows of 10 ms with a grace of 5 ms, keys {@code key@start/end}. */
    private static KStream<String, String> cogroupedBySlidingWindow(StreamsBuilder b) {
        return cogroup(b)
                .windowedBy(org.apache.kafka.streams.kstream.SlidingWindows.ofTimeDifferenceAndGrace(ms(10), ms(5)))
                .aggregate(() -> "0", Materialized.<String, String,
                        org.apache.kafka.streams.state.WindowStore<Bytes, byte[]>>as("w")
                        .withKeySerde(S).withValueSerde(S))
                .toStream()
                .map((wk, v) -> KeyValue.pair(wk.key() + "@" + wk.window().start() + "/" + wk.window().end(), v));
    }

    /** {@link #cogrouped} by sessions of a 5 ms gap and a grace of 5 ms, merged with "|". */
    private static KStream<String, String> cogroupedBySession(StreamsBuilder b) {
        return cogroup(b)
                .windowedBy(org.apache.kafka.streams.kstream.SessionWindows.ofInactivityGapAndGrace(ms(5), ms(5)))
                .aggregate(() -> "0", (k, x, y) -> x + "|" + y, Materialized.<String, String,
                        org.apache.kafka.streams.state.SessionStore<Bytes, byte[]>>as("s")
                        .withKeySerde(S).withValueSerde(S))
                .toStream()
                .map((wk, v) -> KeyValue.pair(wk.key() + "@" + wk.window().start() + "/" + wk.window().end(),
                        v == null ? "null" : v));
    }

    private static void cogroup(boolean cached, String input) {
        run(JoinOracle::cogrouped, input, cached, "c");
    }

    /** The names of a cogroup's nodes and store. */
    private static void describeCogroup() {
        StreamsBuilder b = new StreamsBuilder();
        KStream<String, String> one = b.stream("left", Consumed.with(S, S));
        KStream<String, String> two = b.stream("right", Consumed.with(S, S));
        one.groupByKey().<String>cogroup((k, v, agg) -> agg + v)
                .cogroup(two.groupByKey(), (k, v, agg) -> agg + v)
                .aggregate(() -> "0").toStream().to("out", Produced.with(S, S));
        System.out.print(b.build().describe());
    }

    /** The names of a table-table join's nodes and stores, materialized or not. */
    private static void describeTableTable() {
        StreamsBuilder b = new StreamsBuilder();
        KTable<String, String> l = b.table("left", Consumed.with(S, S));
        KTable<String, String> r = b.table("right", Consumed.with(S, S));
        l.join(r, (x, y) -> x + y).toStream().to("inner", Produced.with(S, S));
        l.leftJoin(r, (x, y) -> x + y, Materialized.<String, String, KeyValueStore<Bytes, byte[]>>as("j")
                .withKeySerde(S).withValueSerde(S)).toStream().to("left-out", Produced.with(S, S));
        l.outerJoin(r, (x, y) -> x + y, Materialized.with(S, S)).toStream().to("outer", Produced.with(S, S));
        System.out.print(b.build().describe());
    }

    /** The names of a stream-table join's node and store, and of a left join after a key change. */
    private static void describeStreamTable() {
        StreamsBuilder b = new StreamsBuilder();
        KStream<String, String> l = b.stream("left", Consumed.with(S, S));
        KTable<String, String> r = b.table("right", Consumed.with(S, S));
        l.join(r, (x, y) -> x + y).to("inner", Produced.with(S, S));
        l.leftJoin(r, (x, y) -> x + y, Joined.<String, String, String>with(S, S, S).withName("named"))
                .to("named", Produced.with(S, S));
        System.out.print(b.build().describe());
    }

    private static void run(java.util.function.Function<StreamsBuilder, KStream<String, String>> topology,
                            String input) {
        run(topology, input, true, null);
    }

    /**
     * Runs the topology (its result to "out") on {@code input}, the record caches on or off,
     * and prints "out", the store {@code store} (unless null) and the records dropped.
     */
    private static void run(java.util.function.Function<StreamsBuilder, KStream<String, String>> topology,
                            String input, boolean cached, String store) {
        StreamsBuilder b = new StreamsBuilder();
        topology.apply(b).to("out", Produced.with(S, S));
        Properties props = new Properties();
        if (!cached) {
            props.put(StreamsConfig.STATESTORE_CACHE_MAX_BYTES_CONFIG, 0L);
        }
        props.put(StreamsConfig.APPLICATION_ID_CONFIG, "homa-oracle");
        props.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, "dummy:1234");
        try (TopologyTestDriver d = new TopologyTestDriver(b.build(), props)) {
            TestInputTopic<String, String> left = d.createInputTopic("left", S.serializer(), S.serializer());
            TestInputTopic<String, String> right = d.createInputTopic("right", S.serializer(), S.serializer());
            for (String row : input.trim().split("\\s+")) {
                TestInputTopic<String, String> topic = row.startsWith("L:") ? left : right;
                String rest = row.substring(2);
                int at = rest.lastIndexOf('@');
                int eq = rest.indexOf('=');
                String key = rest.substring(0, eq);
                String value = rest.substring(eq + 1, at);
                topic.pipeInput(new TestRecord<>(key.equals("null") ? null : key,
                        value.equals("null") ? null : value,
                        Instant.ofEpochMilli(Long.parseLong(rest.substring(at + 1)))));
            }
            TestOutputTopic<String, String> out = d.createOutputTopic("out", S.deserializer(), S.deserializer());
            for (TestRecord<String, String> r : out.readRecordsToList()) {
                System.out.println("out key=" + r.key() + " value=" + r.value() + " ts=" + r.timestamp());
            }
            if (store != null) {
                KeyValueStore<String, ValueAndTimestamp<String>> kv = d.getTimestampedKeyValueStore(store);
                try (KeyValueIterator<String, ValueAndTimestamp<String>> it = kv.all()) {
                    while (it.hasNext()) {
                        KeyValue<String, ValueAndTimestamp<String>> e = it.next();
                        System.out.println("store " + store + " " + e.key + "=" + e.value.value()
                                + "@" + e.value.timestamp());
                    }
                }
            }
            double dropped = 0;
            for (Map.Entry<org.apache.kafka.common.MetricName, ? extends org.apache.kafka.common.Metric> m
                    : d.metrics().entrySet()) {
                if (m.getKey().name().equals("dropped-records-total")) {
                    dropped += ((Number) m.getValue().metricValue()).doubleValue();
                }
            }
            System.out.println("dropped " + (long) dropped);
        } catch (RuntimeException e) {
            System.out.println("exception " + e.getClass().getName() + ": " + e.getMessage());
        }
    }
}
