package hazelog.mapstore;

import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.Properties;
import java.util.Set;
import java.util.concurrent.ConcurrentLinkedDeque;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;

/**
 * A few JDBC connections shared by the member's partition threads. A connection that saw any
 * error is closed, not reused: after PostgreSQL restarts, the next call simply connects anew,
 * so writes resume by themselves.
 */
final class ConnectionPool implements AutoCloseable {

    @FunctionalInterface
    interface Work<T> {
        T run(Connection connection) throws SQLException;
    }

    private final String url;
    private final Properties properties;
    private final String schema;
    private final Semaphore permits;
    private final long acquireTimeoutMillis;
    private final ConcurrentLinkedDeque<Connection> idle = new ConcurrentLinkedDeque<>();
    private volatile boolean schemaReady;
    private volatile boolean closed;

    /** {@code schema} is run once (idempotent DDL) before the first connection is used. */
    ConnectionPool(String url, Properties properties, String schema, int size, long acquireTimeoutMillis) {
        this.url = url;
        this.properties = properties;
        this.schema = schema;
        this.permits = new Semaphore(size, true);
        this.acquireTimeoutMillis = acquireTimeoutMillis;
    }

    <T> T with(Work<T> work) throws SQLException {
        if (closed) {
            throw new SQLException("connection pool is closed", "08003");
        }
        try {
            if (!permits.tryAcquire(acquireTimeoutMillis, TimeUnit.MILLISECONDS)) {
                throw new SQLException("no database connection free within " + acquireTimeoutMillis + " ms", "08001");
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new SQLException("interrupted while waiting for a database connection", "08001", e);
        }
        try {
            Connection pooled = idle.pollFirst();
            if (pooled != null) {
                try {
                    return runOn(pooled, work);
                } catch (SQLException e) {
                    // A connection idle across a database restart is dead; one fresh attempt
                    // (every statement here is idempotent) instead of failing one call per
                    // pooled connection after the database is back.
                    if (!isConnectionLoss(e)) {
                        throw e;
                    }
                }
            }
            return runOn(open(), work);
        } finally {
            permits.release();
        }
    }

    private <T> T runOn(Connection connection, Work<T> work) throws SQLException {
        boolean healthy = false;
        try {
            T result = work.run(connection);
            healthy = true;
            return result;
        } finally {
            if (healthy && !closed) {
                idle.offerFirst(connection);
            } else {
                closeQuietly(connection);
            }
        }
    }

    /** Connection exceptions (08xxx) and operator intervention such as a shutdown (57Pxx). */
    static boolean isConnectionLoss(SQLException e) {
        String state = e.getSQLState();
        return state == null || state.startsWith("08") || state.startsWith("57P");
    }

    private Connection open() throws SQLException {
        Connection connection = DriverManager.getConnection(url, properties);
        try {
            if (!schemaReady) {
                createSchema(connection);
            }
            return connection;
        } catch (SQLException e) {
            closeQuietly(connection);
            throw e;
        }
    }

    private void createSchema(Connection connection) throws SQLException {
        try (Statement statement = connection.createStatement()) {
            statement.execute(schema);
        } catch (SQLException e) {
            // Members (and a member's first connections) race on CREATE TABLE IF NOT EXISTS:
            // PostgreSQL may then report the table (42P07), its row type (42710) or that type's
            // catalog row (23505) as existing. All mean "done".
            if (!Set.of("42P07", "42710", "23505").contains(e.getSQLState())) {
                throw e;
            }
        }
        schemaReady = true;
    }

    @Override
    public void close() {
        closed = true;
        Connection connection;
        while ((connection = idle.pollFirst()) != null) {
            closeQuietly(connection);
        }
    }

    private static void closeQuietly(Connection connection) {
        try {
            connection.close();
        } catch (SQLException ignored) {
            // Already broken: nothing more to release.
        }
    }
}
