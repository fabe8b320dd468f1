<?php
/**
 * The little of WooCommerce the plugin calls on `woocommerce_payment_complete` (WooCommerce itself
 * is not installable here): wc_get_order() and the WC_Order getters it uses, as WooCommerce
 * documents them. Loaded only by PurchasesTest when WooCommerce is absent.
 *
 * @package KycBridge
 */

if ( ! function_exists( 'wc_get_order' ) ) {
	/**
	 * Stand-in orders by id, set by the test.
	 *
	 * @var array<int, KycbTestOrder>
	 */
	$GLOBALS['kycb_test_orders'] = array();

	/**
	 * An order item (WC_Order_Item_Product: get_product_id()).
	 */
	class KycbTestOrderItem {
		/**
		 * Product id.
		 *
		 * @var int
		 */
		private $product_id;

		/**
		 * Item.
		 *
		 * @param int $product_id Product id.
		 */
		public function __construct( $product_id ) {
			$this->product_id = $product_id;
		}

		/**
		 * Product id.
		 *
		 * @return int
		 */
		public function get_product_id() {
			return $this->product_id;
		}
	}

	/**
	 * An order (WC_Order: get_id(), get_billing_email(), get_billing_first_name(), get_items()).
	 */
	class KycbTestOrder {
		/**
		 * Fields.
		 *
		 * @var array
		 */
		private $data;

		/**
		 * Order.
		 *
		 * @param array $data id, email, first_name, product_ids.
		 */
		public function __construct( $data ) {
			$this->data = $data;
		}

		/**
		 * Id.
		 *
		 * @return int
		 */
		public function get_id() {
			return $this->data['id'];
		}

		/**
		 * Billing email.
		 *
		 * @return string
		 */
		public function get_billing_email() {
			return $this->data['email'];
		}

		/**
		 * Billing first name.
		 *
		 * @return string
		 */
		public function get_billing_first_name() {
			return $this->data['first_name'];
		}

		/**
		 * Status (without the wc- prefix).
		 *
		 * @return string
		 */
		public function get_status() {
			return isset( $this->data['status'] ) ? $this->data['status'] : 'processing';
		}

		/**
		 * Change the status, with an order note.
		 *
		 * @param string $status Status.
		 * @param string $note   Note.
		 */
		public function update_status( $status, $note = '' ) {
			$this->data['status']  = $status;
			$this->data['notes'][] = $note;
		}

		/**
		 * Notes added with status changes.
		 *
		 * @return string[]
		 */
		public function notes() {
			return isset( $this->data['notes'] ) ? $this->data['notes'] : array();
		}

		/**
		 * Meta.
		 *
		 * @param string $key Key.
		 * @return mixed
		 */
		public function get_meta( $key ) {
			return isset( $this->data['meta'][ $key ] ) ? $this->data['meta'][ $key ] : '';
		}

		/**
		 * Set meta.
		 *
		 * @param string $key   Key.
		 * @param mixed  $value Value.
		 */
		public function update_meta_data( $key, $value ) {
			$this->data['meta'][ $key ] = $value;
		}

		/**
		 * Remove meta.
		 *
		 * @param string $key Key.
		 */
		public function delete_meta_data( $key ) {
			unset( $this->data['meta'][ $key ] );
		}

		/**
		 * Save (the stand-in keeps everything in memory).
		 */
		public function save() {
		}

		/**
		 * Line items.
		 *
		 * @return KycbTestOrderItem[]
		 */
		public function get_items() {
			return array_map(
				function ( $id ) {
					return new KycbTestOrderItem( $id );
				},
				$this->data['product_ids']
			);
		}
	}

	/**
	 * WooCommerce's order lookup.
	 *
	 * @param int $order_id Order id.
	 * @return KycbTestOrder|false
	 */
	function wc_get_order( $order_id ) {
		return isset( $GLOBALS['kycb_test_orders'][ $order_id ] ) ? $GLOBALS['kycb_test_orders'][ $order_id ] : false;
	}

	/**
	 * WooCommerce's order query: by status and meta key, as the plugin asks.
	 *
	 * @param array $args status, meta_key, limit.
	 * @return KycbTestOrder[]
	 */
	function wc_get_orders( $args ) {
		$found = array();
		foreach ( $GLOBALS['kycb_test_orders'] as $order ) {
			if ( $order->get_status() === $args['status'] && '' !== $order->get_meta( $args['meta_key'] ) ) {
				$found[] = $order;
			}
		}
		return array_slice( $found, 0, $args['limit'] );
	}
}
