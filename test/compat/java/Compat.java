// Compatibility check with the Apache Kafka Java client (kafka-clients): create, metadata,
// idempotent acks=all produce, group consume, commit, committed offsets.
//
// Run as a single-file source program with the jars of test/kafka/lib:
//
//   java -cp 'test/kafka/lib/*' -Dlog4j2.configurationFile=test/kafka/log4j2-tools.properties \
//       test/compat/java/Compat.java --bootstrap HOST:PORT --topic T --group G --count N [--create]
//       [--partitions 3] [--security-protocol PLAINTEXT|SSL|SASL_PLAINTEXT|SASL_SSL]
//       [--sasl-mechanism SCRAM-SHA-512] [--username U] [--password P] [--ca-file PEM] [--timeout S]
//
// The password may come from KGUARD_COMPAT_PASSWORD instead of --password. One JSON line per
// operation on stdout (same shape as the other programs of test/compat); exit 1 if any failed.
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.TreeMap;
import java.util.UUID;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;

import org.apache.kafka.clients.CommonClientConfigs;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.Node;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.TopicPartitionInfo;
import org.apache.kafka.common.config.SaslConfigs;
import org.apache.kafka.common.config.SslConfigs;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;

public class Compat {
    static final String CLIENT = "java";

    // ---- arguments ----------------------------------------------------------------------

    static String bootstrap, topic, group, protocol = "PLAINTEXT", mechanism = "SCRAM-SHA-512";
    static String username, password, caFile;
    static int count = -1, partitions = 3;
    static boolean create;
    static long timeoutMs = 60_000;

    static void usage(String msg) {
        System.err.println("Compat: " + msg);
        System.err.println("usage: Compat --bootstrap HOST:PORT --topic T --group G --count N [--create] [--partitions N]"
                + " [--security-protocol P] [--sasl-mechanism M] [--username U] [--password P] [--ca-file PEM] [--timeout S]");
        System.exit(2);
    }

    static void parse(String[] args) {
        for (int i = 0; i < args.length; i++) {
            String a = args[i];
            if (a.equals("--create")) {
                create = true;
                continue;
            }
            if (i + 1 >= args.length) {
                usage("missing value for " + a);
            }
            String v = args[++i];
            switch (a) {
                case "--bootstrap": bootstrap = v; break;
                case "--topic": topic = v; break;
                case "--group": group = v; break;
                case "--count": count = Integer.parseInt(v); break;
                case "--partitions": partitions = Integer.parseInt(v); break;
                case "--security-protocol": protocol = v; break;
                case "--sasl-mechanism": mechanism = v; break;
                case "--username": username = v; break;
                case "--password": password = v; break;
                case "--ca-file": caFile = v; break;
                case "--timeout": timeoutMs = (long) (Double.parseDouble(v) * 1000); break;
                default: usage("unknown argument " + a);
            }
        }
        if (bootstrap == null || topic == null || group == null || count <= 0) {
            usage("--bootstrap, --topic, --group and a positive --count are required");
        }
        if (password == null) {
            password = System.getenv("KGUARD_COMPAT_PASSWORD");
        }
        if (protocol.startsWith("SASL") && (username == null || password == null)) {
            usage("SASL needs --username and --password (or KGUARD_COMPAT_PASSWORD)");
        }
    }

    static Properties baseProps() {
        Properties p = new Properties();
        p.put(CommonClientConfigs.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(CommonClientConfigs.CLIENT_ID_CONFIG, "kguard-compat-java");
        p.put(CommonClientConfigs.SECURITY_PROTOCOL_CONFIG, protocol);
        p.put(CommonClientConfigs.REQUEST_TIMEOUT_MS_CONFIG, String.valueOf(Math.min(timeoutMs, 30_000)));
        if (protocol.startsWith("SASL")) {
            p.put(SaslConfigs.SASL_MECHANISM, mechanism);
            String module = mechanism.startsWith("SCRAM")
                    ? "org.apache.kafka.common.security.scram.ScramLoginModule"
                    : "org.apache.kafka.common.security.plain.PlainLoginModule";
            p.put(SaslConfigs.SASL_JAAS_CONFIG, module + " required username=\"" + jaasEscape(username)
                    + "\" password=\"" + jaasEscape(password) + "\";");
        }
        if (protocol.endsWith("SSL") && caFile != null) {
            p.put(SslConfigs.SSL_TRUSTSTORE_TYPE_CONFIG, "PEM");
            p.put(SslConfigs.SSL_TRUSTSTORE_LOCATION_CONFIG, caFile);
        }
        return p;
    }

    static String jaasEscape(String s) {
        return s.replace("\\", "\\\\").replace("\"", "\\\"");
    }

    // ---- output -------------------------------------------------------------------------

    static boolean failed;
    static final String VERSION = clientVersion();

    /** The kafka-clients version, from the properties file the jar carries. */
    static String clientVersion() {
        try (java.io.InputStream in = KafkaProducer.class.getResourceAsStream("/kafka/kafka-version.properties")) {
            Properties p = new Properties();
            if (in != null) {
                p.load(in);
            }
            return p.getProperty("version", "unknown");
        } catch (java.io.IOException e) {
            return "unknown";
        }
    }

    static String json(String s) {
        StringBuilder b = new StringBuilder("\"");
        for (char c : s.toCharArray()) {
            switch (c) {
                case '"': b.append("\\\""); break;
                case '\\': b.append("\\\\"); break;
                case '\n': b.append("\\n"); break;
                case '\r': b.append("\\r"); break;
                case '\t': b.append("\\t"); break;
                default:
                    if (c < 0x20) {
                        b.append(String.format("\\u%04x", (int) c));
                    } else {
                        b.append(c);
                    }
            }
        }
        return b.append('"').toString();
    }

    static void report(String op, boolean ok, String detail, List<String> brokers) {
        StringBuilder b = new StringBuilder();
        b.append("{\"client\": ").append(json(CLIENT)).append(", \"version\": ").append(json("kafka-clients " + VERSION))
                .append(", \"op\": ").append(json(op)).append(", \"ok\": ").append(ok)
                .append(", \"detail\": ").append(json(detail));
        if (brokers != null) {
            b.append(", \"brokers\": [");
            for (int i = 0; i < brokers.size(); i++) {
                b.append(i == 0 ? "" : ", ").append(json(brokers.get(i)));
            }
            b.append(']');
        }
        System.out.println(b.append('}'));
        System.out.flush();
        if (!ok) {
            failed = true;
        }
    }

    interface Op {
        String run() throws Exception;
    }

    static List<String> metadataBrokers;

    static boolean step(String op, Op fn) {
        try {
            String detail = fn.run();
            report(op, true, detail, op.equals("metadata") ? metadataBrokers : null);
            return true;
        } catch (Exception e) {
            Throwable c = (e instanceof ExecutionException && e.getCause() != null) ? e.getCause() : e;
            report(op, false, c.getClass().getSimpleName() + ": " + c.getMessage(), null);
            return false;
        }
    }

    // ---- operations ---------------------------------------------------------------------

    static final String RUN = UUID.randomUUID().toString().replace("-", "").substring(0, 12);

    static Admin admin;
    static KafkaConsumer<byte[], byte[]> consumer;
    static final Map<Integer, Long> nextOffsets = new TreeMap<>();
    static final Map<Integer, Long> committed = new TreeMap<>();

    static TopicDescription describe() throws Exception {
        return admin.describeTopics(List.of(topic)).allTopicNames().get(timeoutMs, TimeUnit.MILLISECONDS).get(topic);
    }

    static String create() throws Exception {
        admin.createTopics(List.of(new NewTopic(topic, 3, (short) 3))).all().get(timeoutMs, TimeUnit.MILLISECONDS);
        long end = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(timeoutMs);
        while (System.nanoTime() < end) {
            try {
                TopicDescription d = describe();
                if (d.partitions().size() == 3 && d.partitions().stream().allMatch(p -> p.leader() != null)) {
                    return "created " + topic + " with 3 partitions, replication factor 3";
                }
            } catch (ExecutionException e) {
                // not visible yet
            }
            Thread.sleep(200);
        }
        throw new IllegalStateException("topic created but not visible with leaders in metadata");
    }

    static String metadata() throws Exception {
        List<String> brokers = new ArrayList<>();
        for (Node n : admin.describeCluster().nodes().get(timeoutMs, TimeUnit.MILLISECONDS)) {
            brokers.add(n.host() + ":" + n.port());
        }
        brokers.sort(null);
        if (brokers.isEmpty()) {
            throw new IllegalStateException("no brokers listed");
        }
        int n = describe().partitions().size();
        if (n != partitions) {
            throw new IllegalStateException("topic " + topic + " has " + n + " partitions, want " + partitions);
        }
        metadataBrokers = brokers;
        return "topic " + topic + " present, " + n + " partitions, " + brokers.size() + " brokers";
    }

    static String produce() throws Exception {
        Properties p = baseProps();
        p.put(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, "true");
        p.put(ProducerConfig.ACKS_CONFIG, "all");
        p.put(ProducerConfig.LINGER_MS_CONFIG, "5");
        p.put(ProducerConfig.DELIVERY_TIMEOUT_MS_CONFIG, String.valueOf(Math.max(timeoutMs, 35_000)));
        int acked = 0;
        List<String> errors = new ArrayList<>();
        try (KafkaProducer<byte[], byte[]> prod = new KafkaProducer<>(p, new ByteArraySerializer(), new ByteArraySerializer())) {
            List<Future<RecordMetadata>> fs = new ArrayList<>(count);
            for (int i = 0; i < count; i++) {
                fs.add(prod.send(new ProducerRecord<>(topic, key(i), value(i))));
            }
            prod.flush();
            for (Future<RecordMetadata> f : fs) {
                try {
                    f.get(timeoutMs, TimeUnit.MILLISECONDS);
                    acked++;
                } catch (ExecutionException e) {
                    if (errors.size() < 3) {
                        errors.add(String.valueOf(e.getCause()));
                    }
                }
            }
        }
        if (acked != count) {
            throw new IllegalStateException(acked + "/" + count + " acknowledged, errors: " + errors);
        }
        return count + " records acknowledged (idempotent, acks=all)";
    }

    static byte[] key(int i) {
        return Integer.toString(i).getBytes();
    }

    static byte[] value(int i) {
        return (RUN + ":" + i).getBytes();
    }

    /** The record number of this run's value, or -1 for another run's record. */
    static int number(byte[] v) {
        if (v == null) {
            return -1;
        }
        String s = new String(v);
        int c = s.indexOf(':');
        if (c < 0 || !s.substring(0, c).equals(RUN)) {
            return -1;
        }
        try {
            return Integer.parseInt(s.substring(c + 1));
        } catch (NumberFormatException e) {
            return -1;
        }
    }

    static String consume() throws Exception {
        Properties p = baseProps();
        p.put(ConsumerConfig.GROUP_ID_CONFIG, group);
        p.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        p.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
        consumer = new KafkaConsumer<>(p, new ByteArrayDeserializer(), new ByteArrayDeserializer());
        consumer.subscribe(List.of(topic));
        Map<Integer, Integer> seen = new HashMap<>();
        Map<Integer, Integer> last = new HashMap<>();
        Map<Integer, Integer> perPartition = new TreeMap<>();
        int dups = 0, outOfOrder = 0;
        long end = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(timeoutMs);
        while (seen.size() < count && System.nanoTime() < end) {
            for (ConsumerRecord<byte[], byte[]> r : consumer.poll(Duration.ofMillis(500))) {
                nextOffsets.merge(r.partition(), r.offset() + 1, Math::max);
                int n = number(r.value());
                if (n < 0) {
                    continue;
                }
                if (seen.containsKey(n)) {
                    dups++;
                    continue;
                }
                seen.put(n, r.partition());
                perPartition.merge(r.partition(), 1, Integer::sum);
                if (last.getOrDefault(r.partition(), -1) > n) {
                    outOfOrder++;
                }
                last.put(r.partition(), n);
            }
        }
        String detail = seen.size() + "/" + count + " records received, " + dups + " duplicates, " + outOfOrder
                + " out of order, per partition " + perPartition;
        if (seen.size() != count || dups > 0 || outOfOrder > 0) {
            throw new IllegalStateException(detail);
        }
        return "group " + group + ": " + detail;
    }

    static String commit() {
        Map<TopicPartition, OffsetAndMetadata> offsets = new HashMap<>();
        nextOffsets.forEach((p, o) -> offsets.put(new TopicPartition(topic, p), new OffsetAndMetadata(o)));
        if (offsets.isEmpty()) {
            throw new IllegalStateException("nothing to commit");
        }
        consumer.commitSync(offsets, Duration.ofMillis(timeoutMs));
        committed.putAll(nextOffsets);
        return "committed " + committed;
    }

    static String offsets() {
        Set<TopicPartition> tps = new HashSet<>();
        for (int p = 0; p < partitions; p++) {
            tps.add(new TopicPartition(topic, p));
        }
        Map<Integer, Long> got = new TreeMap<>();
        consumer.committed(tps, Duration.ofMillis(timeoutMs)).forEach((tp, om) -> {
            if (om != null) {
                got.put(tp.partition(), om.offset());
            }
        });
        for (Map.Entry<Integer, Long> e : committed.entrySet()) {
            if (!e.getValue().equals(got.get(e.getKey()))) {
                throw new IllegalStateException("partition " + e.getKey() + ": committed " + e.getValue()
                        + ", fetched " + got.get(e.getKey()));
            }
        }
        return "fetched committed offsets " + got;
    }

    public static void main(String[] args) {
        parse(args);
        admin = Admin.create(baseProps());
        try {
            boolean unused = (!create || step("create", Compat::create))
                    && step("metadata", Compat::metadata)
                    && step("produce", Compat::produce)
                    && step("consume", Compat::consume)
                    && step("commit", Compat::commit)
                    && step("offsets", Compat::offsets);
        } finally {
            if (consumer != null) {
                consumer.close();
            }
            admin.close(Duration.ofSeconds(5));
        }
        System.exit(failed ? 1 : 0);
    }
}
