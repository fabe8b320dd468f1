<?php
/**
 * The little of Fluent Cart's documented model API the plugin calls to hold and release an order
 * (Fluent Cart itself is not installable here). Shapes and names as the WPManageNinja/fluent-cart-dev-docs
 * repository documents them:
 * - docs/database/models/order.md: FluentCart\App\Models\Order (id, status, customer_id,
 *   payment_status, total_amount; relations customer, order_items; find(), updateStatus($key,
 *   $newStatus), getMeta(), updateMeta(), deleteMeta(), addLog($title, $description, $type, $by));
 * - docs/database/models/order-meta.md: FluentCart\App\Models\OrderMeta (order_id, meta_key,
 *   meta_value decoded from JSON; where(), whereHas('order', fn), get(); relation order);
 * - docs/database/schema.md: fct_orders.status is draft / pending / on-hold / processing /
 *   completed / failed / refunded / partial-refund; fct_customers has email, first_name, user_id;
 *   fct_order_items has post_id (the product), object_id (the variation), quantity;
 * - docs/hooks/actions/orders.md: fluent_cart/order_paid_done passes
 *   {order: Order, transaction: OrderTransaction, customer: Customer}.
 * Loaded only by PurchasesTest, only when Fluent Cart is absent; everything is kept in memory.
 *
 * @package KycBridge
 */

namespace FluentCart\App\Models;

if ( ! class_exists( '\FluentCart\App\Models\Order' ) ) {

	/**
	 * A customer (fct_customers).
	 */
	class Customer {
		/**
		 * Columns.
		 *
		 * @var int|string|null
		 */
		public $id, $user_id, $email, $first_name, $last_name;

		/**
		 * Customer.
		 *
		 * @param array $columns Columns.
		 */
		public function __construct( $columns ) {
			foreach ( $columns as $key => $value ) {
				$this->$key = $value;
			}
		}
	}

	/**
	 * An order line (fct_order_items).
	 */
	class OrderItem extends Customer {
		/**
		 * Columns.
		 *
		 * @var int|null
		 */
		public $post_id, $object_id, $quantity;
	}

	/**
	 * A payment (fct_order_transactions).
	 */
	class OrderTransaction extends Customer {
		/**
		 * Columns.
		 *
		 * @var mixed
		 */
		public $order_id, $status, $total;
	}

	/**
	 * An order (fct_orders) with its meta and activity log.
	 */
	class Order {
		/**
		 * Orders by id, as the database would hold them.
		 *
		 * @var array<int, Order>
		 */
		public static $stored = array();

		/**
		 * Columns and relations.
		 *
		 * @var mixed
		 */
		public $id, $status, $customer_id, $payment_status, $total_amount, $customer, $order_items;

		/**
		 * The activity log (addLog).
		 *
		 * @var array[]
		 */
		public $logs = array();

		/**
		 * An order, stored.
		 *
		 * @param array $columns Columns and relations.
		 */
		public function __construct( $columns ) {
			foreach ( $columns as $key => $value ) {
				$this->$key = $value;
			}
			self::$stored[ $this->id ] = $this;
		}

		/**
		 * Find by id.
		 *
		 * @param int $id Id.
		 * @return Order|null
		 */
		public static function find( $id ) {
			return isset( self::$stored[ $id ] ) ? self::$stored[ $id ] : null;
		}

		/**
		 * Set a status column ('status', 'payment_status', 'shipping_status').
		 *
		 * @param string $key        Column.
		 * @param string $new_status Value.
		 * @return Order
		 */
		public function updateStatus( $key, $new_status ) { // phpcs:ignore WordPress.NamingConventions.ValidFunctionName -- Fluent Cart's name.
			$this->$key = $new_status;
			return $this;
		}

		/**
		 * Meta value or the default.
		 *
		 * @param string $meta_key Key.
		 * @param mixed  $default  Default.
		 * @return mixed
		 */
		public function getMeta( $meta_key, $default = false ) { // phpcs:ignore WordPress.NamingConventions.ValidFunctionName
			$row = OrderMeta::row( $this->id, $meta_key );
			return $row ? $row->meta_value : $default;
		}

		/**
		 * Create or update a meta row (arrays are JSON-encoded, read back decoded).
		 *
		 * @param string $meta_key Key.
		 * @param mixed  $value    Value.
		 * @return OrderMeta
		 */
		public function updateMeta( $meta_key, $value ) { // phpcs:ignore WordPress.NamingConventions.ValidFunctionName
			$row = OrderMeta::row( $this->id, $meta_key );
			if ( ! $row ) {
				$row                = new OrderMeta();
				$row->order_id      = $this->id;
				$row->meta_key      = $meta_key; // phpcs:ignore WordPress.DB.SlowDBQuery.slow_db_query_meta_key
				OrderMeta::$rows[] = $row;
			}
			$row->meta_value = json_decode( wp_json_encode( $value ), true ); // phpcs:ignore WordPress.DB.SlowDBQuery.slow_db_query_meta_value
			return $row;
		}

		/**
		 * Delete a meta row.
		 *
		 * @param string $meta_key Key.
		 * @return bool
		 */
		public function deleteMeta( $meta_key ) { // phpcs:ignore WordPress.NamingConventions.ValidFunctionName
			$before          = count( OrderMeta::$rows );
			OrderMeta::$rows = array_values( array_filter( OrderMeta::$rows, fn( $row ) => ! ( $row->order_id === $this->id && $row->meta_key === $meta_key ) ) );
			return count( OrderMeta::$rows ) < $before;
		}

		/**
		 * Add an entry to the order's activity log.
		 *
		 * @param string $title       Title.
		 * @param string $description Description.
		 * @param string $type        info, …
		 * @param string $by          Who.
		 */
		public function addLog( $title, $description = '', $type = 'info', $by = '' ) { // phpcs:ignore WordPress.NamingConventions.ValidFunctionName
			$this->logs[] = compact( 'title', 'description', 'type', 'by' );
		}
	}

	/**
	 * Order meta (fct_order_meta); its query is the small part of the ORM the plugin uses.
	 */
	class OrderMeta {
		/**
		 * All meta rows.
		 *
		 * @var OrderMeta[]
		 */
		public static $rows = array();

		/**
		 * Columns.
		 *
		 * @var mixed
		 */
		public $order_id, $meta_key, $meta_value;

		/**
		 * Conditions of a query: [column, value] pairs and whereHas('order') conditions.
		 *
		 * @var array
		 */
		private $wheres = array(), $order_wheres = array();

		/**
		 * The order relation.
		 *
		 * @param string $name order.
		 * @return Order|null
		 */
		public function __get( $name ) {
			return 'order' === $name ? Order::find( $this->order_id ) : null;
		}

		/**
		 * One order's row for a key.
		 *
		 * @param int    $order_id Order id.
		 * @param string $meta_key Key.
		 * @return OrderMeta|null
		 */
		public static function row( $order_id, $meta_key ) {
			foreach ( self::$rows as $row ) {
				if ( $row->order_id === $order_id && $row->meta_key === $meta_key ) {
					return $row;
				}
			}
			return null;
		}

		/**
		 * A query on a column.
		 *
		 * @param string $column Column.
		 * @param mixed  $value  Value.
		 * @return OrderMeta The query.
		 */
		public static function where( $column, $value ) {
			$query           = new self();
			$query->wheres[] = array( $column, $value );
			return $query;
		}

		/**
		 * Rows whose related order matches what the callback asks (its where() calls).
		 *
		 * @param string   $relation order.
		 * @param callable $callback Gets a query to add where() to.
		 * @return OrderMeta The query.
		 */
		public function whereHas( $relation, $callback ) { // phpcs:ignore WordPress.NamingConventions.ValidFunctionName
			$order_query = new class() {
				/**
				 * Conditions.
				 *
				 * @var array
				 */
				public $wheres = array();

				/**
				 * A condition on the order.
				 *
				 * @param string $column Column.
				 * @param mixed  $value  Value.
				 * @return object
				 */
				public function where( $column, $value ) {
					$this->wheres[] = array( $column, $value );
					return $this;
				}
			};
			$callback( $order_query );
			$this->order_wheres = array_merge( $this->order_wheres, $order_query->wheres );
			unset( $relation );
			return $this;
		}

		/**
		 * The matching rows.
		 *
		 * @return OrderMeta[]
		 */
		public function get() {
			$found = array();
			foreach ( self::$rows as $row ) {
				$order = Order::find( $row->order_id );
				$ok    = true;
				foreach ( $this->wheres as list( $column, $value ) ) {
					$ok = $ok && $row->$column === $value;
				}
				foreach ( $this->order_wheres as list( $column, $value ) ) {
					$ok = $ok && $order && $order->$column === $value;
				}
				if ( $ok ) {
					$found[] = $row;
				}
			}
			return $found;
		}
	}
}
