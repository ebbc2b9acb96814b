// Readiness check for the test cluster, run by cluster.sh as a single-file source program:
//
//   java -cp 'lib/*' Ready.java BOOTSTRAP TOPIC BROKERS TIMEOUT_SECONDS
//
// Succeeds (exit 0) only when the cluster lists BROKERS brokers, TOPIC exists with
// 3 partitions and replication factor 3 (created if missing), every partition has a
// leader and a full ISR, and an idempotent producer with acks=all gets its records
// acknowledged. Anything else before the deadline is retried; then it exits 1.
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.TopicPartitionInfo;
import org.apache.kafka.common.errors.TopicExistsException;
import org.apache.kafka.common.serialization.StringSerializer;

public class Ready {
    public static void main(String[] args) throws Exception {
        if (args.length != 4) {
            System.err.println("usage: Ready BOOTSTRAP TOPIC BROKERS TIMEOUT_SECONDS");
            System.exit(2);
        }
        String bootstrap = args[0], topic = args[1];
        int brokers = Integer.parseInt(args[2]);
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(Long.parseLong(args[3]));
        String last = "no attempt";
        while (System.nanoTime() < deadline) {
            try {
                check(bootstrap, topic, brokers);
                System.out.println("ready: " + brokers + " brokers, topic " + topic
                        + " RF=3 with full ISR, acks=all produce acknowledged");
                return;
            } catch (Exception e) {
                Throwable c = (e instanceof ExecutionException && e.getCause() != null) ? e.getCause() : e;
                last = c.getClass().getSimpleName() + ": " + c.getMessage();
                Thread.sleep(500);
            }
        }
        System.err.println("not ready: " + last);
        System.exit(1);
    }

    static void check(String bootstrap, String topic, int brokers) throws Exception {
        Properties ap = new Properties();
        ap.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        ap.put(AdminClientConfig.REQUEST_TIMEOUT_MS_CONFIG, "5000");
        ap.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, "10000");
        try (Admin admin = Admin.create(ap)) {
            int n = admin.describeCluster().nodes().get(10, TimeUnit.SECONDS).size();
            if (n != brokers) {
                throw new IllegalStateException(n + " brokers registered, want " + brokers);
            }
            try {
                admin.createTopics(List.of(new NewTopic(topic, 3, (short) 3))).all().get(10, TimeUnit.SECONDS);
            } catch (ExecutionException e) {
                if (!(e.getCause() instanceof TopicExistsException)) {
                    throw e;
                }
            }
            Map<String, TopicDescription> d = admin.describeTopics(List.of(topic)).allTopicNames().get(10, TimeUnit.SECONDS);
            for (TopicPartitionInfo p : d.get(topic).partitions()) {
                if (p.leader() == null || p.replicas().size() != 3 || p.isr().size() != 3) {
                    throw new IllegalStateException("partition " + p.partition() + " leader=" + p.leader()
                            + " replicas=" + p.replicas().size() + " isr=" + p.isr().size());
                }
            }
        }
        Properties pp = new Properties();
        pp.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        pp.put(ProducerConfig.ACKS_CONFIG, "all");
        pp.put(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, "true");
        pp.put(ProducerConfig.DELIVERY_TIMEOUT_MS_CONFIG, "15000");
        pp.put(ProducerConfig.REQUEST_TIMEOUT_MS_CONFIG, "5000");
        pp.put(ProducerConfig.MAX_BLOCK_MS_CONFIG, "10000");
        try (KafkaProducer<String, String> p = new KafkaProducer<>(pp, new StringSerializer(), new StringSerializer())) {
            for (int i = 0; i < 3; i++) {
                RecordMetadata m = p.send(new ProducerRecord<>(topic, i, null, "ready-" + i)).get(20, TimeUnit.SECONDS);
                if (m.offset() < 0) {
                    throw new IllegalStateException("no offset for partition " + i);
                }
            }
            p.close(Duration.ofSeconds(5));
        }
    }
}
