package dev.homa.bench;

import java.nio.ByteBuffer;
import java.time.Duration;
import java.util.HashMap;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

import org.apache.kafka.common.serialization.Serde;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.common.utils.Bytes;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.kstream.Consumed;
import org.apache.kafka.streams.kstream.Grouped;
import org.apache.kafka.streams.kstream.JoinWindows;
import org.apache.kafka.streams.kstream.Joined;
import org.apache.kafka.streams.kstream.KStream;
import org.apache.kafka.streams.kstream.Materialized;
import org.apache.kafka.streams.kstream.KTable;
import org.apache.kafka.streams.kstream.Produced;
import org.apache.kafka.streams.kstream.StreamJoined;
import org.apache.kafka.streams.kstream.TimeWindows;
import org.apache.kafka.streams.kstream.WindowedSerdes;
import org.apache.kafka.streams.state.KeyValueStore;
import org.apache.kafka.streams.state.WindowStore;

/**
 * One benchmark workload on Kafka Streams, run by homa-bench as a separate JVM until it is
 * killed. Each workload does what its HOMA twin (benchmarks/src/workload.rs) does, on the
 * same topics with the same key and value encodings (raw bytes).
 *
 * <p>Arguments: --workload ID --bootstrap HOST:PORT --input TOPIC --output TOPIC
 * --app-id ID --state-dir DIR [--set KEY=VALUE]... (settings as in a properties file).
 */
public final class KafkaStreamsBench {
    private KafkaStreamsBench() {}

    public static void main(String[] args) throws InterruptedException {
        Map<String, String> options = new HashMap<>();
        Properties props = new Properties();
        for (int i = 0; i + 1 < args.length; i += 2) {
            String name = args[i];
            String value = args[i + 1];
            if (name.equals("--set")) {
                int eq = value.indexOf('=');
                if (eq <= 0) {
                    fail("--set takes KEY=VALUE, got '" + value + "'");
                }
                props.put(value.substring(0, eq), value.substring(eq + 1));
            } else if (name.startsWith("--")) {
                options.put(name.substring(2), value);
            } else {
                fail("unexpected argument '" + name + "'");
            }
        }
        String workload = required(options, "workload");
        String input = required(options, "input");
        String output = required(options, "output");
        props.put(StreamsConfig.APPLICATION_ID_CONFIG, required(options, "app-id"));
        props.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, required(options, "bootstrap"));
        props.put(StreamsConfig.STATE_DIR_CONFIG, required(options, "state-dir"));

        StreamsBuilder builder = new StreamsBuilder();
        Serde<byte[]> bytes = Serdes.ByteArray();
        KStream<byte[], byte[]> in = builder.stream(input, Consumed.with(bytes, bytes));
        switch (workload) {
            case "w0" -> in.to(output, Produced.with(bytes, bytes));
            case "w1", "w1-eos" -> in
                .filter((key, value) -> value.length > 0 && (value[0] & 0xff) < 128)
                .mapValues(KafkaStreamsBench::invert)
                .to(output, Produced.with(bytes, bytes));
            case "w2", "w2-nocache", "w2-eos" -> in
                .groupByKey(Grouped.with(bytes, bytes))
                .aggregate(
                    () -> 0L,
                    (key, value, sum) -> sum + number(value),
                    Materialized.<byte[], Long, KeyValueStore<Bytes, byte[]>>as("w2-sums")
                        .withKeySerde(bytes)
                        .withValueSerde(Serdes.Long()))
                .toStream()
                .to(output, Produced.with(bytes, Serdes.Long()));
            case "w3", "w3-nocache" -> in
                .groupByKey(Grouped.with(bytes, bytes))
                .windowedBy(TimeWindows.ofSizeWithNoGrace(Duration.ofSeconds(60)))
                .count(Materialized.<byte[], Long, WindowStore<Bytes, byte[]>>as("w3-counts")
                    .withKeySerde(bytes)
                    .withValueSerde(Serdes.Long()))
                .toStream()
                .to(output, Produced.with(
                    WindowedSerdes.timeWindowedSerdeFrom(byte[].class, 60_000L), Serdes.Long()));
            case "w3-hopping", "w3-hopping-nocache" -> in
                .groupByKey(Grouped.with(bytes, bytes))
                .windowedBy(TimeWindows.ofSizeWithNoGrace(Duration.ofSeconds(60))
                    .advanceBy(Duration.ofSeconds(10)))
                .aggregate(
                    () -> 0L,
                    (key, value, sum) -> sum + number(value),
                    Materialized.<byte[], Long, WindowStore<Bytes, byte[]>>as("w3-sums")
                        .withKeySerde(bytes)
                        .withValueSerde(Serdes.Long()))
                .toStream()
                .to(output, Produced.with(
                    WindowedSerdes.timeWindowedSerdeFrom(byte[].class, 60_000L), Serdes.Long()));
            case "w4-table" -> {
                // The table's topic is named after the input's, as the harness loads it.
                KTable<byte[], byte[]> table = builder.table(input + "-table", Consumed.with(bytes, bytes),
                    Materialized.<byte[], byte[], KeyValueStore<Bytes, byte[]>>as("w4-table")
                        .withKeySerde(bytes)
                        .withValueSerde(bytes));
                in.join(table, KafkaStreamsBench::joined, Joined.with(bytes, bytes, bytes))
                    .to(output, Produced.with(bytes, bytes));
            }
            case "w4-streams" -> {
                KStream<byte[], byte[]> right = builder.stream(input + "-right", Consumed.with(bytes, bytes));
                in.join(right, KafkaStreamsBench::joined,
                        JoinWindows.ofTimeDifferenceAndGrace(Duration.ofSeconds(10), Duration.ofSeconds(30)),
                        StreamJoined.with(bytes, bytes, bytes))
                    .to(output, Produced.with(bytes, bytes));
            }
            default -> fail("unknown workload '" + workload + "'");
        }

        KafkaStreams streams = new KafkaStreams(builder.build(), props);
        CountDownLatch failed = new CountDownLatch(1);
        streams.setUncaughtExceptionHandler(e -> {
            e.printStackTrace();
            failed.countDown();
            return org.apache.kafka.streams.errors.StreamsUncaughtExceptionHandler
                .StreamThreadExceptionResponse.SHUTDOWN_CLIENT;
        });
        streams.start();
        // Runs until killed; ends by itself if the harness that started it is gone.
        long parent = ProcessHandle.current().parent().map(ProcessHandle::pid).orElse(-1L);
        while (!failed.await(500, TimeUnit.MILLISECONDS)) {
            long now = ProcessHandle.current().parent().map(ProcessHandle::pid).orElse(-1L);
            if (now != parent) {
                break;
            }
        }
        streams.close();
        System.exit(failed.getCount() == 0 ? 1 : 0);
    }

    /** W2's number: the first 8 bytes of a value, big-endian (0 for a shorter value). */
    static long number(byte[] value) {
        return value.length >= 8 ? ByteBuffer.wrap(value, 0, 8).getLong() : 0L;
    }

    /** W4's joiner: the two values one after the other. */
    static byte[] joined(byte[] left, byte[] right) {
        byte[] out = new byte[left.length + right.length];
        System.arraycopy(left, 0, out, 0, left.length);
        System.arraycopy(right, 0, out, left.length, right.length);
        return out;
    }

    /** W1's value mapping: every byte inverted (a new array, as mapValues returns). */
    static byte[] invert(byte[] value) {
        byte[] out = new byte[value.length];
        for (int i = 0; i < value.length; i++) {
            out[i] = (byte) ~value[i];
        }
        return out;
    }

    private static String required(Map<String, String> options, String name) {
        String value = options.get(name);
        if (value == null) {
            fail("missing --" + name);
        }
        return value;
    }

    private static void fail(String message) {
        System.err.println("kafka-streams bench: " + message);
        System.exit(2);
    }
}
