<?php
/**
 * Purchase → verification: a paid order of a configured product (Fluent Cart or WooCommerce)
 * sends its buyer, when not yet verified at that level, a verification link through the bridge
 * (n8n emails it once per order), and the receipt page shows a "Verify your identity" call to action.
 *
 * @package KycBridge
 */

namespace KycBridge;

defined( 'ABSPATH' ) || exit;

/**
 * The shop hooks: Fluent Cart's `fluent_cart/order_paid_done` and receipt view, WooCommerce's
 * `woocommerce_payment_complete` and `woocommerce_thankyou`; with "Hold orders", a paid order of a
 * configured product waits on hold in either shop until its buyer is verified.
 */
final class Purchases {

	/**
	 * The level each user type is verified at (the bridge's default configuration; the
	 * `kycb_user_type_level` filter adjusts it).
	 */
	const LEVELS = array(
		'contributor'        => 'basic',
		'intern'             => 'basic',
		'investor'           => 'enhanced',
		'customer'           => 'basic',
		'cooperative_member' => 'enhanced',
		'vendor'             => 'basic',
	);

	const HOLD_META = '_kycb_awaiting_verification';
	const CRON      = 'kycb_release_orders';

	/**
	 * Fluent Cart's order status for a held order: one of the statuses its fct_orders table documents
	 * (draft / pending / on-hold / processing / completed / …), with its own
	 * `fluent_cart/order_status_changed_to_on-hold` action. See the WPManageNinja/fluent-cart-dev-docs
	 * repository: docs/database/schema.md (fct_orders.status), docs/database/models/order.md
	 * (updateStatus, updateMeta, getMeta, deleteMeta, addLog, the customer relation),
	 * docs/database/models/order-meta.md (where, whereHas('order', …), meta_value decoded) and
	 * docs/hooks/actions/orders.md (order_paid_done: $data['order'] is an Order model).
	 */
	const FLUENT_CART_HELD = 'on-hold';

	/**
	 * Hook up (called from Plugin::register; the hooks only fire where the shops are active).
	 */
	public static function register() {
		add_action( self::CRON, array( self::class, 'release_orders' ) );
		add_action( 'fluent_cart/order_paid_done', array( self::class, 'fluent_cart_paid' ), 10, 1 );
		add_action( 'fluent_cart/views/checkout_order_receipt', array( self::class, 'fluent_cart_receipt' ), 10, 1 );
		add_action( 'woocommerce_payment_complete', array( self::class, 'woocommerce_paid' ), 10, 1 );
		add_action( 'woocommerce_thankyou', array( self::class, 'woocommerce_receipt' ), 10, 1 );
	}

	/**
	 * A user type's level.
	 *
	 * @param string $type User type.
	 * @return string basic or enhanced.
	 */
	public static function level_of( $type ) {
		$level = isset( self::LEVELS[ $type ] ) ? self::LEVELS[ $type ] : 'basic';
		/**
		 * The level a user type is verified at, as the bridge's configuration has it.
		 *
		 * @param string $level basic or enhanced.
		 * @param string $type  User type.
		 */
		return (string) apply_filters( 'kycb_user_type_level', $level, $type );
	}

	/**
	 * The user type an order needs: the highest-level one among its configured products ('' none).
	 *
	 * @param int[] $product_ids Product (post) ids of the order.
	 * @return string
	 */
	public static function user_type_for( $product_ids ) {
		$map  = Settings::shop_products();
		$best = '';
		foreach ( $product_ids as $id ) {
			$type = isset( $map[ (int) $id ] ) ? $map[ (int) $id ] : '';
			if ( '' !== $type && ( '' === $best || Status::LEVEL_RANK[ self::level_of( $type ) ] > Status::LEVEL_RANK[ self::level_of( $best ) ] ) ) {
				$best = $type;
			}
		}
		return $best;
	}

	/**
	 * A value of Fluent Cart's hook data: arrays in its documentation, models (objects) at run time.
	 *
	 * @param mixed  $thing Array or object.
	 * @param string $key   Key.
	 * @return mixed
	 */
	private static function field( $thing, $key ) {
		if ( is_array( $thing ) ) {
			return isset( $thing[ $key ] ) ? $thing[ $key ] : null;
		}
		if ( is_object( $thing ) && isset( $thing->$key ) ) {
			return $thing->$key;
		}
		return null;
	}

	/**
	 * `fluent_cart/order_paid_done`: $data = {order: {id, customer_id, order_items: [{post_id, …}],
	 * customer}, customer: {email, first_name, …}, transaction}.
	 *
	 * @param mixed $data Hook data.
	 */
	public static function fluent_cart_paid( $data ) {
		$order    = self::field( $data, 'order' );
		$customer = self::field( $data, 'customer' );
		if ( ! $customer ) {
			$customer = self::field( $order, 'customer' );
		}
		$items = self::field( $order, 'order_items' );
		$ids   = array();
		foreach ( is_iterable( $items ) ? $items : array() as $item ) {
			$ids[] = (int) self::field( $item, 'post_id' );
		}
		$type = self::paid( 'fluent_cart', (string) self::field( $order, 'id' ), (string) self::field( $customer, 'email' ), (string) self::field( $customer, 'first_name' ), $ids );
		if ( '' !== $type && Settings::get( 'hold_orders' ) ) {
			$model = self::fluent_cart_order( $order );
			if ( $model ) {
				// The status it had is kept with the hold, and given back on release (Fluent Cart
				// completes digital orders on payment, others go on processing).
				$model->updateMeta(
					self::HOLD_META,
					array(
						'user_type' => $type,
						'status'    => (string) $model->status,
					)
				);
				$model->updateStatus( 'status', self::FLUENT_CART_HELD );
				$model->addLog( __( 'Awaiting identity verification', 'kyc-bridge' ), __( 'On hold until the buyer\'s identity is verified (KYC Bridge).', 'kyc-bridge' ), 'info', 'KYC Bridge' );
			}
		}
	}

	/**
	 * The Fluent Cart Order model of the hook's order: the model itself (as Fluent Cart passes it),
	 * or found by id (when the data is an array, as older docs show it); null without Fluent Cart.
	 *
	 * @param mixed $order Order model or array.
	 * @return object|null
	 */
	private static function fluent_cart_order( $order ) {
		if ( is_object( $order ) && method_exists( $order, 'updateStatus' ) && method_exists( $order, 'updateMeta' ) ) {
			return $order;
		}
		$id = (int) self::field( $order, 'id' );
		if ( $id > 0 && class_exists( '\FluentCart\App\Models\Order' ) ) {
			$found = \FluentCart\App\Models\Order::find( $id );
			return is_object( $found ) ? $found : null;
		}
		return null;
	}

	/**
	 * `woocommerce_payment_complete`: the order id.
	 *
	 * @param int $order_id Order id.
	 */
	public static function woocommerce_paid( $order_id ) {
		$order = function_exists( 'wc_get_order' ) ? wc_get_order( $order_id ) : null;
		if ( ! $order ) {
			return;
		}
		$ids = array();
		foreach ( $order->get_items() as $item ) {
			$ids[] = (int) $item->get_product_id();
		}
		$type = self::paid( 'woocommerce', (string) $order->get_id(), (string) $order->get_billing_email(), (string) $order->get_billing_first_name(), $ids );
		if ( '' !== $type && Settings::get( 'hold_orders' ) ) {
			$order->update_meta_data( self::HOLD_META, $type );
			$order->update_status( 'on-hold', __( 'Awaiting identity verification (KYC Bridge).', 'kyc-bridge' ) );
			$order->save();
		}
	}

	/**
	 * Release held orders (Fluent Cart and WooCommerce) whose buyers are verified now (hourly, wp-cron).
	 *
	 * @return int How many orders were released.
	 */
	public static function release_orders() {
		return self::release_fluent_cart_orders() + self::release_woocommerce_orders();
	}

	/**
	 * Held Fluent Cart orders (still on hold, with the plugin's meta) whose buyers are verified now go
	 * back to the status they had when they were held.
	 *
	 * @return int How many orders were released.
	 */
	private static function release_fluent_cart_orders() {
		if ( ! class_exists( '\FluentCart\App\Models\OrderMeta' ) ) {
			return 0;
		}
		$released = 0;
		$held     = \FluentCart\App\Models\OrderMeta::where( 'meta_key', self::HOLD_META )
			->whereHas(
				'order',
				function ( $query ) {
					$query->where( 'status', self::FLUENT_CART_HELD );
				}
			)
			->get();
		foreach ( $held as $meta ) {
			$order = $meta->order;
			$hold  = $meta->meta_value;
			$type  = is_array( $hold ) && isset( $hold['user_type'] ) ? (string) $hold['user_type'] : '';
			$email = (string) self::field( self::field( $order, 'customer' ), 'email' );
			if ( ! $order || '' === $type || ! self::verified( $email, $type ) ) {
				continue;
			}
			$before = isset( $hold['status'] ) && '' !== (string) $hold['status'] && self::FLUENT_CART_HELD !== $hold['status'] ? (string) $hold['status'] : 'processing';
			$order->deleteMeta( self::HOLD_META );
			$order->updateStatus( 'status', $before );
			$order->addLog( __( 'Identity verified', 'kyc-bridge' ), __( 'Identity verified: released (KYC Bridge).', 'kyc-bridge' ), 'info', 'KYC Bridge' );
			++$released;
		}
		return $released;
	}

	/**
	 * Held WooCommerce orders whose buyers are verified now go on to processing.
	 *
	 * @return int How many orders were released.
	 */
	private static function release_woocommerce_orders() {
		if ( ! function_exists( 'wc_get_orders' ) ) {
			return 0;
		}
		$released = 0;
		$held     = wc_get_orders(
			array(
				'status'   => 'on-hold',
				'meta_key' => self::HOLD_META, // phpcs:ignore WordPress.DB.SlowDBQuery.slow_db_query_meta_key -- held orders only, few.
				'limit'    => 100,
			)
		);
		foreach ( $held as $order ) {
			$type = (string) $order->get_meta( self::HOLD_META );
			if ( '' !== $type && self::verified( (string) $order->get_billing_email(), $type ) ) {
				$order->delete_meta_data( self::HOLD_META );
				$order->update_status( 'processing', __( 'Identity verified: released (KYC Bridge).', 'kyc-bridge' ) );
				$order->save();
				++$released;
			}
		}
		return $released;
	}

	/**
	 * Run release_orders() hourly (activation); stop on deactivation.
	 *
	 * @param bool $on Schedule or clear.
	 */
	public static function schedule( $on ) {
		if ( $on && ! wp_next_scheduled( self::CRON ) ) {
			wp_schedule_event( time() + HOUR_IN_SECONDS, 'hourly', self::CRON );
		} elseif ( ! $on ) {
			wp_clear_scheduled_hook( self::CRON );
		}
	}

	/**
	 * The cache entry that remembers an order's verification need (the receipt reads it).
	 *
	 * @param string $shop     fluent_cart or woocommerce.
	 * @param string $order_id Order id.
	 * @return string
	 */
	public static function order_key( $shop, $order_id ) {
		return 'kycb_order_' . md5( $shop . '|' . $order_id );
	}

	/**
	 * Whether the buyer is verified for this user type (approved for it, or at its level or above).
	 *
	 * @param string $email Email.
	 * @param string $type  User type.
	 * @return bool
	 */
	public static function verified( $email, $type ) {
		$any = Kyc_Lookup::lookup( $email );
		if ( ! is_wp_error( $any ) && Status::passes( $any, array( 'level' => self::level_of( $type ) ) ) ) {
			return true;
		}
		$typed = Kyc_Lookup::lookup( $email, $type );
		return ! is_wp_error( $typed ) && Status::passes( $typed, array( 'type' => $type ) );
	}

	/**
	 * A paid order: when it has a configured product and its buyer is not verified at that level,
	 * ask the bridge to have n8n email a link (once per order: the order is the event's key).
	 *
	 * @param string $shop        fluent_cart or woocommerce.
	 * @param string $order_id    Order id.
	 * @param string $email       Buyer's email.
	 * @param string $first_name  Buyer's first name.
	 * @param int[]  $product_ids Product ids.
	 * @return string The user type the buyer still has to verify, '' when none.
	 */
	public static function paid( $shop, $order_id, $email, $first_name, $product_ids ) {
		$type = self::user_type_for( $product_ids );
		if ( '' === $type || '' === $order_id || ! is_email( $email ) ) {
			return '';
		}
		$key = self::order_key( $shop, $order_id );
		if ( false !== get_transient( $key ) ) {
			return '';  // this order was handled: its link is on its way
		}
		if ( self::verified( $email, $type ) ) {
			set_transient( $key, array( 'state' => 'verified' ), 30 * DAY_IN_SECONDS );
			return '';
		}
		$sent = Bridge_Client::from_settings()->send_link( $email, $type, $first_name, 'wp-order:' . $shop . ':' . $order_id );
		set_transient(
			$key,
			array(
				'state'     => is_wp_error( $sent ) ? 'link_failed' : 'link_sent',
				'email'     => strtolower( $email ),
				'user_type' => $type,
			),
			30 * DAY_IN_SECONDS
		);
		/**
		 * A paid order needs its buyer's identity verification.
		 *
		 * @param string $shop     fluent_cart or woocommerce.
		 * @param string $order_id Order id.
		 * @param string $type     User type.
		 */
		do_action( 'kycb_order_needs_verification', $shop, $order_id, $type );
		return $type;
	}

	/**
	 * Fluent Cart's receipt (`fluent_cart/views/checkout_order_receipt`, data with the order).
	 *
	 * @param mixed $data View data.
	 */
	public static function fluent_cart_receipt( $data ) {
		self::receipt( 'fluent_cart', (string) self::field( self::field( $data, 'order' ), 'id' ) );
	}

	/**
	 * WooCommerce's order-received page.
	 *
	 * @param int $order_id Order id.
	 */
	public static function woocommerce_receipt( $order_id ) {
		self::receipt( 'woocommerce', (string) $order_id );
	}

	/**
	 * The call to action on a receipt, while the buyer is not verified.
	 *
	 * @param string $shop     fluent_cart or woocommerce.
	 * @param string $order_id Order id.
	 */
	public static function receipt( $shop, $order_id ) {
		$record = get_transient( self::order_key( $shop, $order_id ) );
		if ( ! is_array( $record ) || 'verified' === $record['state'] || self::verified( $record['email'], $record['user_type'] ) ) {
			return;
		}
		$labels = Settings::user_type_labels();
		$page   = (int) Settings::get( 'verify_page' );
		$url    = $page > 0 ? get_permalink( $page ) : '';
		echo '<section class="kycb-order-cta" data-user-type="' . esc_attr( $record['user_type'] ) . '"><h2>' . esc_html__( 'Verify your identity', 'kyc-bridge' ) . '</h2><p>';
		/* translators: %s: user type, e.g. Investor. */
		echo esc_html( sprintf( __( 'Your order needs an identity verification (%s) before we can deliver it.', 'kyc-bridge' ), isset( $labels[ $record['user_type'] ] ) ? $labels[ $record['user_type'] ] : $record['user_type'] ) );
		if ( 'link_sent' === $record['state'] ) {
			echo ' ' . esc_html__( 'We have emailed you a personal link; you can also start right away.', 'kyc-bridge' );
		}
		echo '</p>';
		if ( $url ) {
			echo '<p><a class="wp-element-button button kycb-order-verify" href="' . esc_url( $url ) . '">' . esc_html__( 'Verify your identity', 'kyc-bridge' ) . '</a></p>';
		}
		echo '</section>';
	}
}
