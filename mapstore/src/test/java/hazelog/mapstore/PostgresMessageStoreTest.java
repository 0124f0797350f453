package hazelog.mapstore;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.hazelcast.core.HazelcastJsonValue;
import com.hazelcast.spi.exception.RetryableHazelcastException;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/** The MapStore against a real PostgreSQL, each test on a table of its own. */
class PostgresMessageStoreTest {
    private static TestPostgres postgres;
    private static int tables;

    private PostgresMessageStore store;

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

    @AfterEach
    void destroyStore() {
        if (store != null) {
            store.destroy();
        }
    }

    static Properties properties(String url, String table) {
        Properties properties = new Properties();
        properties.setProperty("jdbc-url", url);
        properties.setProperty("user", TestPostgres.USER);
        properties.setProperty("password", TestPostgres.PASSWORD);
        properties.setProperty("table", table);
        // Generous: a healthy PostgreSQL on a busy machine (make test runs the hosts meanwhile)
        // took over 2 s to accept; a stopped one refuses at once, so the outage tests stay fast.
        properties.setProperty("connect-timeout-seconds", "10");
        properties.setProperty("initial-load-wait-seconds", "30");
        return properties;
    }

    private static synchronized String newTable() {
        return "messages_t" + ++tables;
    }

    private PostgresMessageStore open(String table) {
        PostgresMessageStore opened = new PostgresMessageStore();
        opened.init(null, properties(postgres.url(), table), "messages");
        return opened;
    }

    static String json(long acceptedAt, String uuid, String msg) {
        return "{\"accepted_at\":" + acceptedAt + ",\"uuid\":\"" + uuid + "\",\"msg\":\"" + msg + "\"}";
    }

    private static List<Object> row(String table, String uuid) throws SQLException {
        try (Connection connection = DriverManager.getConnection(postgres.url(), TestPostgres.USER, TestPostgres.PASSWORD);
             Statement statement = connection.createStatement();
             ResultSet rows = statement.executeQuery("SELECT accepted_at, body FROM " + table + " WHERE uuid = '" + uuid + "'")) {
            return rows.next() ? List.of(rows.getLong(1), rows.getString(2)) : List.of();
        }
    }

    private static long count(String table) throws SQLException {
        try (Connection connection = DriverManager.getConnection(postgres.url(), TestPostgres.USER, TestPostgres.PASSWORD);
             Statement statement = connection.createStatement();
             ResultSet rows = statement.executeQuery("SELECT count(*) FROM " + table)) {
            rows.next();
            return rows.getLong(1);
        }
    }

    @Test
    void storedTextComesBackByteForByteWithItsAcceptTime() throws Exception {
        String table = newTable();
        store = open(table);
        String uuid = UUID.randomUUID().toString();
        // Non-ASCII, escapes and a decoy "accepted_at" inside the message text.
        String text = json(1_700_000_000_123_456_789L, uuid, "h\u00e9llo \\\"accepted_at\\\":5 \u2603");
        store.store(uuid, new HazelcastJsonValue(text));

        assertEquals(List.of(1_700_000_000_123_456_789L, text), row(table, uuid));
        assertEquals(text, store.loadAll(List.of(uuid)).get(uuid).toString());
        assertEquals(Map.of(), store.loadAll(List.of(UUID.randomUUID().toString())));
    }

    @Test
    void aKeyLoadCalledAbsentIsCheckedByItsStoreAndReadByTheNextLoadWhenTheTableHadIt() throws Exception {
        String table = newTable();
        store = open(table);
        String uuid = UUID.randomUUID().toString();
        String first = json(1, uuid, "first");
        store.store(uuid, new HazelcastJsonValue(first));

        // The table has the key, the map (which load stands for) did not: absent, unread.
        assertNull(store.load(uuid));
        assertEquals(0, store.singleLoadsRead());
        // The same text again (a store that had committed, retried): done, row unchanged.
        store.store(uuid, new HazelcastJsonValue(first));
        assertEquals(List.of(1L, first), row(table, uuid));

        // Other text under that key: refused retryably, the row kept, the next load reads it.
        assertNull(store.load(uuid));
        assertThrows(RetryableHazelcastException.class,
                () -> store.store(uuid, new HazelcastJsonValue(json(2, uuid, "second"))));
        assertEquals(List.of(1L, first), row(table, uuid));
        assertEquals(first, store.load(uuid).toString());
        assertEquals(1, store.singleLoadsRead());
        assertEquals(1, count(table));

        // A store with no load before it (a put replacing a value the map holds) replaces.
        store.store(uuid, new HazelcastJsonValue(json(3, uuid, "third")));
        assertEquals(List.of(3L, json(3, uuid, "third")), row(table, uuid));
    }

    @Test
    void storeAllWritesEveryEntryAndLoadAllReadsThemBack() throws Exception {
        String table = newTable();
        store = open(table);
        Map<String, HazelcastJsonValue> batch = new HashMap<>();
        for (int i = 0; i < 1000; i++) {
            String uuid = UUID.randomUUID().toString();
            batch.put(uuid, new HazelcastJsonValue(json(i, uuid, "m" + i)));
        }
        store.storeAll(batch);

        assertEquals(1000, count(table));
        Set<String> keys = new HashSet<>();
        store.loadAllKeys().forEach(keys::add);
        assertEquals(batch.keySet(), keys);
        Map<String, HazelcastJsonValue> loaded = store.loadAll(keys);
        assertEquals(batch, loaded);
    }

    @Test
    void storingAKeyAgainReplacesItsValue() throws Exception {
        String table = newTable();
        store = open(table);
        String uuid = UUID.randomUUID().toString();
        store.store(uuid, new HazelcastJsonValue(json(1, uuid, "first")));
        store.storeAll(Map.of(uuid, new HazelcastJsonValue(json(2, uuid, "second"))));

        assertEquals(1, count(table));
        assertEquals(List.of(2L, json(2, uuid, "second")), row(table, uuid));
    }

    @Test
    void deleteAllRemovesOnlyTheGivenKeys() throws Exception {
        String table = newTable();
        store = open(table);
        String kept = UUID.randomUUID().toString();
        String gone1 = UUID.randomUUID().toString();
        String gone2 = UUID.randomUUID().toString();
        for (String uuid : List.of(kept, gone1, gone2)) {
            store.store(uuid, new HazelcastJsonValue(json(1, uuid, uuid)));
        }
        store.deleteAll(List.of(gone1, gone2));
        store.delete(UUID.randomUUID().toString());

        assertEquals(1, count(table));
        assertEquals(Set.of(kept), store.loadAll(List.of(kept, gone1, gone2)).keySet());
    }

    @Test
    void membersCreatingTheTableTogetherAllSucceed() throws Exception {
        String table = newTable();
        ExecutorService pool = Executors.newFixedThreadPool(6);
        try {
            List<Future<Object>> results = new java.util.ArrayList<>();
            for (int i = 0; i < 6; i++) {
                int n = i;
                results.add(pool.submit(() -> {
                    PostgresMessageStore member = open(table);
                    try {
                        String uuid = UUID.randomUUID().toString();
                        member.store(uuid, new HazelcastJsonValue(json(n, uuid, "x")));
                    } finally {
                        member.destroy();
                    }
                    return null;
                }));
            }
            for (Future<Object> result : results) {
                result.get();
            }
        } finally {
            pool.shutdownNow();
        }
        assertEquals(6, count(table));
    }

    @Test
    void aStoppedDatabaseFailsTheStoreAndTheStoreRecoversWhenItIsBack() throws Exception {
        String table = newTable();
        store = open(table);
        String before = UUID.randomUUID().toString();
        store.store(before, new HazelcastJsonValue(json(1, before, "before")));

        postgres.stopServer();
        String during = UUID.randomUUID().toString();
        StoreUnavailableException failure;
        try {
            failure = assertThrows(StoreUnavailableException.class,
                    () -> store.store(during, new HazelcastJsonValue(json(2, during, "during"))));
        } finally {
            postgres.startServer();
        }
        assertTrue(failure.getMessage().startsWith("PostgreSQL unavailable"), failure.getMessage());

        // The first call after the restart already succeeds: no dead pooled connection is used.
        String after = UUID.randomUUID().toString();
        store.store(after, new HazelcastJsonValue(json(3, after, "after")));
        assertEquals(Set.of(before, after), store.loadAll(List.of(before, during, after)).keySet());
    }

    @Test
    void theInitialLoadsBatchesWaitForTheDatabaseWhileASingleLoadFailsAtOnce() throws Exception {
        String table = newTable();
        store = open(table);
        String key = UUID.randomUUID().toString();
        store.store(key, new HazelcastJsonValue(json(1, key, "kept")));

        // Hazelcast completes an eager load without a batch whose loadAll threw: the map then
        // serves a partial log. So loadAll waits for the database; load (a put's read-through)
        // must not hold a partition thread meanwhile.
        // A store found the key in the table with other text: its next load reads the table.
        assertNull(store.load(key));
        assertThrows(RetryableHazelcastException.class,
                () -> store.store(key, new HazelcastJsonValue(json(2, key, "other"))));
        postgres.stopServer();
        CompletableFuture<Map<String, HazelcastJsonValue>> batch;
        try {
            assertThrows(StoreUnavailableException.class, () -> store.load(key));
            batch = CompletableFuture.supplyAsync(() -> store.loadAll(List.of(key)));
            Thread.sleep(3000);
            assertFalse(batch.isDone(), "loadAll gave up while the database was down");
        } finally {
            postgres.startServer();
        }
        assertEquals(Set.of(key), batch.get(60, TimeUnit.SECONDS).keySet());
    }

    @Test
    void concurrentStoresAreEachCommittedBeforeTheyReturn() throws Exception {
        String table = newTable();
        store = open(table);
        int threads = 16;
        int perThread = 100;
        ExecutorService pool = Executors.newFixedThreadPool(threads);
        try {
            List<Future<Integer>> results = new java.util.ArrayList<>();
            for (int t = 0; t < threads; t++) {
                results.add(pool.submit(() -> {
                    int seen = 0;
                    try (Connection check = DriverManager.getConnection(postgres.url(), TestPostgres.USER, TestPostgres.PASSWORD)) {
                        for (int i = 0; i < perThread; i++) {
                            String uuid = UUID.randomUUID().toString();
                            String text = json(i, uuid, "c" + i);
                            store.store(uuid, new HazelcastJsonValue(text));
                            // Write-through: committed, hence visible to another session, already.
                            try (Statement statement = check.createStatement();
                                 ResultSet rows = statement.executeQuery("SELECT body FROM " + table + " WHERE uuid = '" + uuid + "'")) {
                                if (rows.next() && rows.getString(1).equals(text)) {
                                    seen++;
                                }
                            }
                        }
                    }
                    return seen;
                }));
            }
            for (Future<Integer> result : results) {
                assertEquals(perThread, result.get());
            }
        } finally {
            pool.shutdownNow();
        }
        assertEquals(threads * perThread, count(table));
    }

    @Test
    void acceptedAtIsReadFromAnyLayoutAndZeroWithout() {
        assertEquals(42L, PostgresMessageStore.acceptedAt("{\"uuid\":\"u\", \"accepted_at\" : 42}"));
        assertEquals(0L, PostgresMessageStore.acceptedAt("{\"uuid\":\"u\"}"));
        assertEquals(0L, PostgresMessageStore.acceptedAt("{\"accepted_at\":99999999999999999999}"));
    }

    @Test
    void aBadTableNameIsRefused() {
        PostgresMessageStore bad = new PostgresMessageStore();
        assertThrows(IllegalArgumentException.class, () -> bad.init(null, properties(postgres.url(), "messages; drop table x"), "messages"));
    }
}
