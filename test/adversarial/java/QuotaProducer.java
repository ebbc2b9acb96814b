// Quota check with the Apache Kafka Java client (kafka-clients): produce 10 KiB records as fast as
// the client lets it for --warmup + --seconds through kguard, then report what was acknowledged
// within the measured window and the producer's own throttle metrics (KIP-219: the client reads
// throttle_time_ms from each response and backs off by itself).
//
// Run as a single-file source program with the jars of test/kafka/lib:
//
//   java -cp 'test/kafka/lib/*' -Dlog4j2.configurationFile=test/kafka/log4j2-tools.properties \
//       test/adversarial/java/QuotaProducer.java --bootstrap HOST:PORT --topic T --username U \
//       [--warmup S] [--seconds S]
//
// The password comes from KGUARD_QUOTA_PASSWORD. SASL_PLAINTEXT with SCRAM-SHA-512. One JSON line
// on stdout: records sent, acknowledged, failed, bytes acknowledged within the window,
// produce-throttle-time-avg and -max (ms). Exit 1 on a usage error or a failed flush.
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.atomic.AtomicLong;

import org.apache.kafka.clients.CommonClientConfigs;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.Metric;
import org.apache.kafka.common.MetricName;
import org.apache.kafka.common.config.SaslConfigs;
import org.apache.kafka.common.serialization.ByteArraySerializer;

public class QuotaProducer {
    public static void main(String[] args) throws Exception {
        String bootstrap = null, topic = null, username = null;
        double warmup = 5, seconds = 20;
        for (int i = 0; i + 1 < args.length; i += 2) {
            String v = args[i + 1];
            switch (args[i]) {
                case "--bootstrap": bootstrap = v; break;
                case "--topic": topic = v; break;
                case "--username": username = v; break;
                case "--warmup": warmup = Double.parseDouble(v); break;
                case "--seconds": seconds = Double.parseDouble(v); break;
                default:
                    System.err.println("QuotaProducer: unknown argument " + args[i]);
                    System.exit(1);
            }
        }
        String password = System.getenv("KGUARD_QUOTA_PASSWORD");
        if (bootstrap == null || topic == null || username == null || password == null) {
            System.err.println("QuotaProducer: --bootstrap, --topic, --username and KGUARD_QUOTA_PASSWORD are required");
            System.exit(1);
        }
        Properties p = new Properties();
        p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(CommonClientConfigs.SECURITY_PROTOCOL_CONFIG, "SASL_PLAINTEXT");
        p.put(SaslConfigs.SASL_MECHANISM, "SCRAM-SHA-512");
        p.put(SaslConfigs.SASL_JAAS_CONFIG, "org.apache.kafka.common.security.scram.ScramLoginModule required username=\""
                + username + "\" password=\"" + password + "\";");
        p.put(ProducerConfig.ACKS_CONFIG, "all");
        p.put(ProducerConfig.COMPRESSION_TYPE_CONFIG, "none");
        p.put(ProducerConfig.LINGER_MS_CONFIG, "5");
        p.put(ProducerConfig.BATCH_SIZE_CONFIG, String.valueOf(64 << 10));
        // A small buffer: the flush at the end drains it within a second at 2 MB/s.
        p.put(ProducerConfig.BUFFER_MEMORY_CONFIG, String.valueOf(2 << 20));
        p.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
        p.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());

        byte[] value = new byte[10 << 10];
        for (int i = 0; i < value.length; i++) value[i] = (byte) ('a' + i % 26);
        AtomicLong acked = new AtomicLong(), failed = new AtomicLong(), windowBytes = new AtomicLong();
        long records = 0;
        double throttleAvg, throttleMax;
        try (KafkaProducer<byte[], byte[]> producer = new KafkaProducer<>(p)) {
            long start = System.nanoTime();
            long from = start + (long) (warmup * 1e9), end = from + (long) (seconds * 1e9);
            while (System.nanoTime() < end) {
                records++;
                producer.send(new ProducerRecord<>(topic, value), (md, err) -> {
                    if (err != null) {
                        failed.incrementAndGet();
                        return;
                    }
                    acked.incrementAndGet();
                    long now = System.nanoTime();
                    if (now >= from && now < end) windowBytes.addAndGet(value.length);
                });
            }
            producer.flush();
            throttleAvg = metric(producer.metrics(), "produce-throttle-time-avg");
            throttleMax = metric(producer.metrics(), "produce-throttle-time-max");
            producer.close(java.time.Duration.ofSeconds(30));
            System.out.printf("{\"records\":%d,\"acked\":%d,\"failed\":%d,\"window_bytes\":%d,\"window_seconds\":%s,"
                    + "\"produce_throttle_time_avg\":%s,\"produce_throttle_time_max\":%s}%n",
                    records, acked.get(), failed.get(), windowBytes.get(), seconds, num(throttleAvg), num(throttleMax));
        }
    }

    static double metric(Map<MetricName, ? extends Metric> metrics, String name) {
        for (Map.Entry<MetricName, ? extends Metric> e : metrics.entrySet()) {
            if (e.getKey().group().equals("producer-metrics") && e.getKey().name().equals(name)) {
                Object v = e.getValue().metricValue();
                return v instanceof Double ? (Double) v : Double.NaN;
            }
        }
        return Double.NaN;
    }

    // num is a JSON number, or -1 for NaN (no sample).
    static String num(double d) {
        return Double.isNaN(d) || Double.isInfinite(d) ? "-1" : String.valueOf(d);
    }
}
