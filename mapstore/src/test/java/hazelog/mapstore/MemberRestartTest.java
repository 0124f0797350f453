package hazelog.mapstore;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.hazelcast.config.Config;
import com.hazelcast.config.MapStoreConfig;
import com.hazelcast.core.Hazelcast;
import com.hazelcast.core.HazelcastInstance;
import com.hazelcast.core.HazelcastJsonValue;
import com.hazelcast.map.IMap;
import java.io.IOException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.HashMap;
import java.util.Map;
import java.util.Set;
import java.util.UUID;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/** A real Hazelcast member with the MapStore configured as hazelcast.yaml.j2 configures it. */
class MemberRestartTest {
    private static TestPostgres postgres;

    @BeforeAll
    static void startPostgres() throws Exception {
        postgres = TestPostgres.start();
    }

    @AfterAll
    static void stopPostgres() throws Exception {
        if (postgres != null) {
            postgres.close();
        }
    }

    private static HazelcastInstance member(String table) throws IOException {
        return member(table, 0);
    }

    private static HazelcastInstance member(String table, long maxEntryBytes) throws IOException {
        return member(table, maxEntryBytes, 30);
    }

    private static HazelcastInstance member(String table, long maxEntryBytes, int loadWait) throws IOException {
        return member(table, maxEntryBytes, loadWait, null);
    }

    private static HazelcastInstance member(String table, long maxEntryBytes, int loadWait,
            PostgresMessageStore implementation) throws IOException {
        Config config = new Config();
        config.setClusterName("mapstore-test-" + UUID.randomUUID());
        config.setProperty("hazelcast.phone.home.enabled", "false");
        config.getNetworkConfig().setPort(freePort()).setPortAutoIncrement(false);
        config.getNetworkConfig().getInterfaces().setEnabled(true).addInterface("127.0.0.1");
        config.getNetworkConfig().getJoin().getAutoDetectionConfig().setEnabled(false);
        config.getNetworkConfig().getJoin().getMulticastConfig().setEnabled(false);
        config.getNetworkConfig().getJoin().getTcpIpConfig().setEnabled(true).addMember("127.0.0.1");
        config.setProperty("hazelcast.socket.bind.any", "false");
        MapStoreConfig store = new MapStoreConfig()
                .setEnabled(true)
                .setClassName(PostgresMessageStore.class.getName())
                .setInitialLoadMode(MapStoreConfig.InitialLoadMode.EAGER)
                .setWriteDelaySeconds(0);
        if (implementation != null) {
            store.setImplementation(implementation);
        }
        PostgresMessageStoreTest.properties(postgres.url(), table)
                .forEach((key, value) -> store.setProperty((String) key, (String) value));
        store.setProperty("max-entry-bytes", Long.toString(maxEntryBytes));
        store.setProperty("initial-load-wait-seconds", Integer.toString(loadWait));
        config.getMapConfig("messages").setBackupCount(0).setMapStoreConfig(store);
        return Hazelcast.newHazelcastInstance(config);
    }

    private static int freePort() throws IOException {
        try (ServerSocket socket = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
            return socket.getLocalPort();
        }
    }

    @Test
    void aRestartedMemberLoadsEveryEntryBackAndRefusesWritesWhileTheDatabaseIsDown() throws Exception {
        String table = "member_restart";
        Map<String, HazelcastJsonValue> written = new HashMap<>();
        HazelcastInstance first = member(table);
        try {
            IMap<String, HazelcastJsonValue> map = first.getMap("messages");
            for (int i = 0; i < 500; i++) {
                String uuid = UUID.randomUUID().toString();
                HazelcastJsonValue value = new HazelcastJsonValue(PostgresMessageStoreTest.json(i, uuid, "m" + i));
                assertNull(map.putIfAbsent(uuid, value));
                written.put(uuid, value);
            }
        } finally {
            first.getLifecycleService().terminate();
        }

        HazelcastInstance second = member(table);
        try {
            IMap<String, HazelcastJsonValue> map = second.getMap("messages");
            assertEquals(written.size(), map.size());
            assertEquals(written, new HashMap<>(map.getAll(written.keySet())));

            String refused = UUID.randomUUID().toString();
            postgres.stopServer();
            try {
                RuntimeException failure = assertThrows(RuntimeException.class,
                        () -> map.putIfAbsent(refused, new HazelcastJsonValue(PostgresMessageStoreTest.json(1, refused, "x"))));
                assertTrue(String.valueOf(failure.getMessage()).contains("PostgreSQL unavailable"), failure.toString());
            } finally {
                postgres.startServer();
            }
            // Refused means not kept: neither in memory nor in the database.
            assertFalse(map.containsKey(refused));
            String accepted = UUID.randomUUID().toString();
            assertNull(map.putIfAbsent(accepted, new HazelcastJsonValue(PostgresMessageStoreTest.json(2, accepted, "y"))));
            assertEquals(written.size() + 1, map.size());
        } finally {
            second.getLifecycleService().terminate();
        }
    }

    @Test
    void putsOfNewMessagesReadNothingAndAPutOfAKeyOnlyTheTableHoldsAnswersTheStoredRow() throws Exception {
        String table = "no_lookup";
        PostgresMessageStore store = new PostgresMessageStore();
        HazelcastInstance member = member(table, 0, 30, store);
        try {
            IMap<String, HazelcastJsonValue> map = member.getMap("messages");
            for (int i = 0; i < 200; i++) {
                String uuid = UUID.randomUUID().toString();
                assertNull(map.putIfAbsent(uuid, new HazelcastJsonValue(PostgresMessageStoreTest.json(i, uuid, "m" + i))));
            }
            // Every put asked the loader for its new key; none read the table.
            assertEquals(0, store.singleLoadsRead());
            assertEquals(200, count(table));

            // A row the map does not hold (its put failed after the commit, or its partition
            // was lost with every backup), then a retry under its UUID with another accept time.
            String uuid = UUID.randomUUID().toString();
            String first = PostgresMessageStoreTest.json(1, uuid, "first");
            insertRow(table, uuid, 1, first);
            HazelcastJsonValue previous = map.putIfAbsent(uuid, new HazelcastJsonValue(PostgresMessageStoreTest.json(2, uuid, "first")));
            assertEquals(first, String.valueOf(previous));
            assertEquals(first, map.get(uuid).toString());
            assertEquals(first, body(table, uuid));
            assertEquals(1, store.singleLoadsRead());

            // The same text retried: stored, the row as it was.
            String same = UUID.randomUUID().toString();
            String text = PostgresMessageStoreTest.json(3, same, "same");
            insertRow(table, same, 3, text);
            assertNull(map.putIfAbsent(same, new HazelcastJsonValue(text)));
            assertEquals(text, body(table, same));
            assertEquals(202, count(table));
            assertEquals(202, map.size());
        } finally {
            member.getLifecycleService().terminate();
        }
    }

    private static Connection connect() throws SQLException {
        return DriverManager.getConnection(postgres.url(), TestPostgres.USER, TestPostgres.PASSWORD);
    }

    private static void insertRow(String table, String uuid, long acceptedAt, String body) throws SQLException {
        try (Connection connection = connect();
             PreparedStatement insert = connection.prepareStatement(
                     "INSERT INTO " + table + " (uuid, accepted_at, body) VALUES (?, ?, ?)")) {
            insert.setString(1, uuid);
            insert.setLong(2, acceptedAt);
            insert.setString(3, body);
            insert.executeUpdate();
        }
    }

    private static String body(String table, String uuid) throws SQLException {
        try (Connection connection = connect();
             PreparedStatement select = connection.prepareStatement("SELECT body FROM " + table + " WHERE uuid = ?")) {
            select.setString(1, uuid);
            try (ResultSet rows = select.executeQuery()) {
                return rows.next() ? rows.getString(1) : null;
            }
        }
    }

    private static long count(String table) throws SQLException {
        try (Connection connection = connect();
             Statement statement = connection.createStatement();
             ResultSet rows = statement.executeQuery("SELECT count(*) FROM " + table)) {
            rows.next();
            return rows.getLong(1);
        }
    }

    @Test
    void aFullMemberRefusesPutsWithLogFullAndKeepsServing() throws Exception {
        long budget = 400_000;
        HazelcastInstance member = member("log_full", budget);
        try {
            IMap<String, HazelcastJsonValue> map = member.getMap("messages");
            String text = "x".repeat(1000);
            int stored = 0;
            RuntimeException refusal = null;
            for (int i = 0; i < 1000 && refusal == null; i++) {
                String uuid = UUID.randomUUID().toString();
                try {
                    map.putIfAbsent(uuid, new HazelcastJsonValue(PostgresMessageStoreTest.json(i, uuid, text)));
                    stored++;
                } catch (RuntimeException e) {
                    refusal = e;
                    assertFalse(map.containsKey(uuid));
                }
            }
            assertTrue(refusal != null, "1000 puts of 1 KB never filled a 400 KB budget");
            assertTrue(String.valueOf(refusal.getMessage()).contains("log_full"), refusal.toString());
            assertTrue(stored > 50, "refused after only " + stored + " puts");
            long cost = map.getLocalMapStats().getOwnedEntryMemoryCost();
            assertTrue(cost <= budget, cost + " bytes held, budget " + budget);
            // Still serving: reads work, and the refusal changed nothing.
            assertEquals(stored, map.size());
            assertEquals(stored, map.values().size());
            assertTrue(member.getLifecycleService().isRunning());
        } finally {
            member.getLifecycleService().terminate();
        }
    }

    @Test
    void aMemberStartedBeforeTheDatabaseLoadsEverythingOnceItIsUp() throws Exception {
        String table = "late_database";
        HazelcastInstance first = member(table);
        String kept = UUID.randomUUID().toString();
        try {
            first.<String, HazelcastJsonValue>getMap("messages")
                    .put(kept, new HazelcastJsonValue(PostgresMessageStoreTest.json(1, kept, "kept")));
        } finally {
            first.getLifecycleService().terminate();
        }
        postgres.stopServer();
        // The default: wait for the database however long it takes (here 8 s, beyond the 5 s
        // connect timeout and several retries).
        HazelcastInstance second = member(table, 0, 0);
        Thread later = new Thread(() -> {
            try {
                Thread.sleep(8000);
                postgres.startServer();
            } catch (Exception e) {
                throw new IllegalStateException(e);
            }
        });
        later.start();
        try {
            IMap<String, HazelcastJsonValue> map = second.getMap("messages");
            // The whole log, loaded eagerly, never an empty map served in the meantime.
            assertEquals(1, map.size());
            assertEquals(Set.of(kept), map.keySet());
        } finally {
            later.join();
            second.getLifecycleService().terminate();
        }
    }
}
