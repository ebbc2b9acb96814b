// Kafka Streams word count with exactly_once_v2, for test/frameworks (run through kguard).
//
// The topology has a repartition topic (groupBy the word) and a changelog (the count store
// "counts"); the record cache is off, so every update of a count is sent: with exactly-once
// the committed output of a word is exactly 1, 2, ..., n, whatever crashes happen.
//
// Run as a single-file source program with the jars of test/frameworks/lib:
//
//   java -cp 'test/frameworks/lib/*' -Dlog4j2.configurationFile=test/kafka/log4j2-tools.properties \
//       test/frameworks/java/WordCount.java CLIENT.properties INPUT OUTPUT
//
// CLIENT.properties holds the StreamsConfig: bootstrap.servers, application.id, state.dir,
// group.protocol (classic or streams), the SASL settings. The test's own settings are added
// here. stdout carries one line per event, for the test to wait on:
//   STATE <old> <new>                 every state change of the KafkaStreams instance
//   RESTORED <store> <partition> <n>  a store partition restored n records from its changelog
//   FATAL <exception chain>           an uncaught exception (the program exits 1)
// SIGTERM closes the application cleanly (exit 0).
import java.io.FileInputStream;
import java.io.InputStream;
import java.time.Duration;
import java.util.Arrays;
import java.util.Locale;
import java.util.Properties;
import java.util.concurrent.CountDownLatch;

import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.common.utils.Bytes;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.KeyValue;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.errors.StreamsUncaughtExceptionHandler;
import org.apache.kafka.streams.kstream.Consumed;
import org.apache.kafka.streams.kstream.Grouped;
import org.apache.kafka.streams.kstream.Materialized;
import org.apache.kafka.streams.kstream.Produced;
import org.apache.kafka.streams.processor.StateRestoreListener;
import org.apache.kafka.streams.state.KeyValueStore;

public class WordCount {
    static synchronized void say(String line) {
        System.out.println(line);
        System.out.flush();
    }

    static String chain(Throwable e) {
        StringBuilder b = new StringBuilder();
        for (Throwable c = e; c != null; c = c.getCause()) {
            if (b.length() > 0) b.append(" <- ");
            b.append(c.getClass().getName()).append(": ").append(c.getMessage());
            if (c.getCause() == c) break;
        }
        return b.toString().replace('\n', ' ');
    }

    public static void main(String[] args) throws Exception {
        if (args.length != 3) {
            System.err.println("usage: WordCount CLIENT.properties INPUT OUTPUT");
            System.exit(2);
        }
        Properties props = new Properties();
        try (InputStream in = new FileInputStream(args[0])) {
            props.load(in);
        }
        String input = args[1], output = args[2];

        props.put(StreamsConfig.PROCESSING_GUARANTEE_CONFIG, StreamsConfig.EXACTLY_ONCE_V2);
        props.put(StreamsConfig.STATESTORE_CACHE_MAX_BYTES_CONFIG, 0);
        props.putIfAbsent(StreamsConfig.COMMIT_INTERVAL_MS_CONFIG, 200);
        props.putIfAbsent(StreamsConfig.NUM_STREAM_THREADS_CONFIG, 1);
        props.putIfAbsent(StreamsConfig.REPARTITION_PURGE_INTERVAL_MS_CONFIG, 1000);
        props.putIfAbsent(StreamsConfig.REPLICATION_FACTOR_CONFIG, -1);
        props.put(StreamsConfig.DEFAULT_KEY_SERDE_CLASS_CONFIG, Serdes.StringSerde.class);
        props.put(StreamsConfig.DEFAULT_VALUE_SERDE_CLASS_CONFIG, Serdes.StringSerde.class);
        // A killed member leaves the classic group after the session timeout (the broker's
        // minimum); the streams protocol has its own, group-level timeout.
        if (!"streams".equalsIgnoreCase(props.getProperty(StreamsConfig.GROUP_PROTOCOL_CONFIG, "classic"))) {
            props.put(StreamsConfig.consumerPrefix(ConsumerConfig.SESSION_TIMEOUT_MS_CONFIG), 6000);
            props.put(StreamsConfig.consumerPrefix(ConsumerConfig.HEARTBEAT_INTERVAL_MS_CONFIG), 1500);
        }
        props.put(StreamsConfig.producerPrefix(ProducerConfig.TRANSACTION_TIMEOUT_CONFIG), 10000);

        StreamsBuilder builder = new StreamsBuilder();
        builder.stream(input, Consumed.with(Serdes.String(), Serdes.String()))
                .flatMapValues(line -> Arrays.asList(line.toLowerCase(Locale.ROOT).split("\\W+")))
                .filter((k, w) -> !w.isEmpty())
                .groupBy((k, w) -> w, Grouped.with("by-word", Serdes.String(), Serdes.String()))
                .count(Materialized.<String, Long, KeyValueStore<Bytes, byte[]>>as("counts"))
                .toStream()
                .map((w, n) -> KeyValue.pair(w, Long.toString(n)))
                .to(output, Produced.with(Serdes.String(), Serdes.String()));

        KafkaStreams streams = new KafkaStreams(builder.build(), props);
        CountDownLatch done = new CountDownLatch(1);
        int[] exit = {0};
        streams.setStateListener((now, old) -> {
            say("STATE " + old + " " + now);
            if (now == KafkaStreams.State.ERROR || now == KafkaStreams.State.NOT_RUNNING) {
                done.countDown();
            }
        });
        streams.setUncaughtExceptionHandler(e -> {
            say("FATAL " + chain(e));
            exit[0] = 1;
            return StreamsUncaughtExceptionHandler.StreamThreadExceptionResponse.SHUTDOWN_CLIENT;
        });
        streams.setGlobalStateRestoreListener(new StateRestoreListener() {
            @Override
            public void onRestoreStart(TopicPartition tp, String store, long start, long end) {}

            @Override
            public void onBatchRestored(TopicPartition tp, String store, long end, long n) {}

            @Override
            public void onRestoreEnd(TopicPartition tp, String store, long total) {
                say("RESTORED " + store + " " + tp.partition() + " " + total);
            }
        });
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            streams.close(Duration.ofSeconds(20));
            done.countDown();
        }));
        try {
            streams.start();
        } catch (RuntimeException e) {
            say("FATAL " + chain(e));
            System.exit(1);
        }
        done.await();
        streams.close(Duration.ofSeconds(20));
        System.exit(exit[0]);
    }
}
